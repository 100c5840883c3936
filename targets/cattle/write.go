package cattle

import (
	"context"
	"errors"
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/registryhost"
)

// updateCredential is the update in place of credential cr of registry
// regID. Rancher never returns the secret, so only a changed user name shows
// that the credential holds something else than this process last wrote.
func (tg *Target) updateCredential(t refresher.Token, regID string, cr rancherapi.RegistryCredential) refresher.Write {
	id := cr.ID
	return refresher.Write{
		What: "registry credential", Object: "credential " + id, Tokens: []refresher.Token{t}, Detail: tg.detail(),
		Stale: cr.PublicValue != t.Username, Action: refresher.ResultUpdated,
		Fields: logrus.Fields{"registry": t.Host, "registry_id": regID, "credential_id": id},
		Apply: func(ctx context.Context) (refresher.Result, error) {
			if _, err := tg.Store.UpdateRegistryCredential(ctx, id, tg.input(t, "")); err != nil {
				return refresher.ResultFailed, fmt.Errorf("registry %s: update credential %s: %w", regID, id, err)
			}
			return refresher.ResultUpdated, nil
		},
	}
}

// createCredential is a new credential for registry reg, which has none.
func (tg *Target) createCredential(t refresher.Token, reg rancherapi.Registry) refresher.Write {
	regID := reg.ID
	return refresher.Write{
		What: "registry credential", Object: "credential of registry " + regID, Tokens: []refresher.Token{t}, Detail: tg.detail(),
		Stale: true, Action: refresher.ResultCreated,
		Fields: logrus.Fields{"registry": t.Host, "registry_id": regID},
		Apply: func(ctx context.Context) (refresher.Result, error) {
			if _, err := tg.Store.CreateRegistryCredential(ctx, tg.input(t, regID)); err != nil {
				return refresher.ResultFailed, fmt.Errorf("registry %s: create credential: %w", regID, err)
			}
			return refresher.ResultCreated, nil
		},
	}
}

// createRegistry is a new registry for t's host, then its credential
// (AUTO_CREATE). When Rancher answers that the address is in use (a registry
// created meanwhile by someone else) the registries are read again and the
// ones that match are written instead: never a second registry.
func (tg *Target) createRegistry(t refresher.Token) refresher.Write {
	return refresher.Write{
		What: "registry and its credential", Object: "registry " + t.Host, Tokens: []refresher.Token{t}, Detail: tg.detail(),
		Stale: true, Action: refresher.ResultCreated,
		Fields: logrus.Fields{"registry": t.Host},
		Apply: func(ctx context.Context) (refresher.Result, error) {
			reg, err := tg.Store.CreateRegistry(ctx, t.Host, registryDescription)
			switch {
			case err == nil:
				return tg.createCredential(t, reg).Apply(ctx)
			case !rancherapi.HasCode(err, "ServerAddressUsed"):
				return refresher.ResultFailed, fmt.Errorf("create registry: %w", err)
			}
			found, lerr := tg.registriesFor(ctx, t.Host)
			switch {
			case lerr != nil:
				return refresher.ResultFailed, fmt.Errorf("create registry: address in use, then list registries: %w", lerr)
			case len(found) == 0:
				return refresher.ResultFailed, fmt.Errorf("create registry: Rancher says a registry with address %s exists but none is listed (being removed?): %w", t.Host, err)
			}
			return tg.writeInto(ctx, t, found)
		},
	}
}

// registriesFor lists the registries whose address matches host.
func (tg *Target) registriesFor(ctx context.Context, host string) ([]rancherapi.Registry, error) {
	regs, err := tg.Store.ListRegistries(ctx)
	if err != nil {
		return nil, err
	}
	var found []rancherapi.Registry
	for _, reg := range regs {
		if h, err := registryhost.NormalizeHost(reg.ServerAddress); err == nil && h == host && !gone(reg.State) {
			found = append(found, reg)
		}
	}
	return found, nil
}

// writeInto writes t into every usable credential of regs (or a new one per
// registry that has none), at once: the registries were found while applying.
func (tg *Target) writeInto(ctx context.Context, t refresher.Token, regs []rancherapi.Registry) (refresher.Result, error) {
	res := refresher.ResultCreated
	var errs []error
	for _, reg := range regs {
		writes, err := tg.planRegistry(ctx, t, reg)
		if err != nil {
			errs = append(errs, fmt.Errorf("registry %s: %w", reg.ID, err))
			continue
		}
		for _, w := range writes {
			r, err := w.Apply(ctx)
			if err != nil {
				errs = append(errs, err)
			} else if r == refresher.ResultUpdated {
				res = r
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return refresher.ResultFailed, err
	}
	return res, nil
}

func (tg *Target) email() string {
	if tg.Email == "" {
		return DefaultEmail
	}
	return tg.Email
}

// detail is what a credential holds besides the token.
func (tg *Target) detail() string { return "email=" + tg.email() }

func (tg *Target) input(t refresher.Token, registryID string) rancherapi.CredentialInput {
	return rancherapi.CredentialInput{RegistryID: registryID, PublicValue: t.Username, SecretValue: t.Password, Email: tg.email()}
}
