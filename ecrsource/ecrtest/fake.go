package ecrtest

import (
	"context"
	"encoding/base64"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

// Fake answers GetAuthorizationToken in process, through a function field: for
// tests that need exact answers or faults without HTTP.
type Fake struct {
	GetAuthorizationTokenFunc func(ctx context.Context, in *ecr.GetAuthorizationTokenInput) (*ecr.GetAuthorizationTokenOutput, error)
}

// GetAuthorizationToken calls GetAuthorizationTokenFunc.
func (f *Fake) GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, _ ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error) {
	return f.GetAuthorizationTokenFunc(ctx, in)
}

// Login is one authorizationData entry: a registry host and its password; the
// user is AWS.
type Login struct{ Host, Password string }

// Output is an answer holding logins that expire at exp.
func Output(exp time.Time, logins ...Login) *ecr.GetAuthorizationTokenOutput {
	out := &ecr.GetAuthorizationTokenOutput{}
	for _, l := range logins {
		out.AuthorizationData = append(out.AuthorizationData, types.AuthorizationData{
			AuthorizationToken: aws.String(base64.StdEncoding.EncodeToString([]byte("AWS:" + l.Password))),
			ExpiresAt:          aws.Time(exp),
			ProxyEndpoint:      aws.String("https://" + l.Host),
		})
	}
	return out
}

// Static is a Fake that always answers the same logins, expiring at exp.
func Static(exp time.Time, logins ...Login) *Fake {
	return &Fake{GetAuthorizationTokenFunc: func(context.Context, *ecr.GetAuthorizationTokenInput) (*ecr.GetAuthorizationTokenOutput, error) {
		return Output(exp, logins...), nil
	}}
}
