package app

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecrpublic"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/logging"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/tenantrole"
)

// awsSetup is where the AWS configuration comes from: the SDK's default
// chain, or the demo's.
type awsSetup struct {
	// config returns the AWS configuration for region.
	config func(ctx context.Context, region string) (aws.Config, error)
	// ecrOptions are added to every ECR client's (the demo's endpoint).
	ecrOptions []func(*ecr.Options)
}

// defaultAWS loads the configuration as the AWS SDK does by default (its
// variables, shared files, web identity, IMDS), its own log lines through
// log, a missing-credentials failure explained from getenv.
func defaultAWS(log logrus.FieldLogger, getenv func(string) string) awsSetup {
	return awsSetup{config: func(ctx context.Context, region string) (aws.Config, error) {
		c, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region), awsconfig.WithLogger(logging.SDKLogger(log)))
		if err != nil {
			return aws.Config{}, fmt.Errorf("aws configuration: %w", err)
		}
		c.Credentials = ecrsource.ExplainCredentials(c.Credentials, getenv)
		return c, nil
	}}
}

// ownConfig is the daemon's own AWS configuration: AWS_ROLE_ARN is assumed
// through STS unless web identity owns it. Nothing here touches the network.
func ownConfig(ctx context.Context, cfg Config, a awsSetup) (aws.Config, error) {
	awsCfg, err := a.config(ctx, cfg.Region)
	if err != nil {
		return aws.Config{}, err
	}
	if cfg.RoleARN != "" && !cfg.WebIdentity {
		p := tenantrole.AssumeRoleProvider(sts.NewFromConfig(awsCfg), cfg.RoleARN, cfg.RoleSessionName, cfg.RoleExternalID)
		awsCfg.Credentials = aws.NewCredentialsCache(p)
	}
	return awsCfg, nil
}

// sourcesOf builds one ECR source per region over awsCfg, and with
// AWS_ECR_PUBLIC one ECR Public source, as identity ("" for the daemon's own,
// else the tenant role awsCfg's credentials assume): the registries of
// AWS_ECR_REGISTRY_IDS, or the caller's own. Nothing here touches the network.
func sourcesOf(awsCfg aws.Config, cfg Config, a awsSetup, identity string, log logrus.FieldLogger) []refresher.Source {
	var order []string
	ids := map[string][]string{}
	if len(cfg.Registries) == 0 {
		order = []string{cfg.Region}
	}
	for _, r := range cfg.Registries {
		if _, ok := ids[r.Region]; !ok {
			order = append(order, r.Region)
		}
		ids[r.Region] = append(ids[r.Region], r.ID)
	}
	sources := make([]refresher.Source, 0, len(order)+1)
	for _, region := range order {
		opts := append([]func(*ecr.Options){func(o *ecr.Options) { o.Region = region }}, a.ecrOptions...)
		sources = append(sources, &ecrsource.Source{Client: ecr.NewFromConfig(awsCfg, opts...), AWSRegion: region,
			RegistryIDs: ids[region], ProxyHost: cfg.ProxyHost, Identity: identity, Logger: log})
	}
	if cfg.Public {
		// Same credentials, its own endpoint (AWS_ENDPOINT_URL_ECR_PUBLIC is
		// the SDK's for it), always us-east-1 (docs/ecr.md#ecr-public).
		client := ecrpublic.NewFromConfig(awsCfg, func(o *ecrpublic.Options) { o.Region = ecrsource.PublicRegion })
		sources = append(sources, &ecrsource.PublicSource{Client: client, Identity: identity, Logger: log})
	}
	return sources
}

// newResolver is the tenant identities' Refresher.Sources: roles
// AWS_ALLOWED_ROLE_ARNS allows, each assumed through STS with the daemon's
// own configuration (own), AWS_ROLE_EXTERNAL_ID sent, over the same regions
// and registries as the daemon's own sources.
func newResolver(own aws.Config, cfg Config, a awsSetup, reg prometheus.Registerer, log logrus.FieldLogger) *tenantrole.Resolver {
	return &tenantrole.Resolver{
		Allow: cfg.AllowedRoles, Base: own, ExternalID: cfg.RoleExternalID,
		NewSources: func(c aws.Config, identity string) []refresher.Source { return sourcesOf(c, cfg, a, identity, log) },
		Metrics:    tenantrole.NewMetrics(reg), Logger: log,
	}
}
