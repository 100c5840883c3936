package refresher

import "regexp"

// registryHost matches an ECR registry host (a proxyEndpoint's host): account id,
// dkr.ecr or dkr-ecr with an optional -fips, region, partition suffix. The forms
// are listed in docs/ecr.md#registry-hosts. Emulators such as moto answer the
// standard form in every region, which this accepts too.
var registryHost = regexp.MustCompile(`^([0-9]{12})\.(?:dkr\.ecr|dkr-ecr)(?:-fips)?\.([a-z0-9-]+)\.` +
	`(?:amazonaws\.com|amazonaws\.com\.cn|amazonaws\.eu|on\.aws|on\.amazonwebservices\.com\.cn|` +
	`c2s\.ic\.gov|sc2s\.sgov\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$`)

// parseRegistryHost returns the account id and region of an ECR registry host,
// as NormalizeHost returns it; ok is false for any other host.
func parseRegistryHost(host string) (account, region string, ok bool) {
	m := registryHost.FindStringSubmatch(host)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}
