package config

import (
	"fmt"
	"strings"
)

// SIP is the platform's SIP edge (seed 003): the domain its subscribers
// register in, and the appid the terminals' account requests are signed
// with.
type SIP struct {
	// Domain is the platform's SIP domain, the realm of its subscribers'
	// digest credentials; default sip.convene.local.
	Domain string `yaml:"domain"`
	// AppID is the secret of the account API's tokens (md5(appid +
	// timestamp)); the demo topology's is convene-demo. Without it the
	// account API does not serve.
	AppID string `yaml:"appid"`
}

// DefaultSIPDomain is the SIP domain of a topology that names none.
const DefaultSIPDomain = "sip.convene.local"

// DemoAppID is the demo topology's account API appid.
const DemoAppID = "convene-demo"

func (s *SIP) defaults() {
	if s.Domain == "" {
		s.Domain = DefaultSIPDomain
	}
}

func (s SIP) validate() error {
	if strings.ContainsAny(s.Domain, " \t\r\n:;@<>\"") || strings.HasPrefix(s.Domain, ".") {
		return fmt.Errorf("sip.domain %q must be a host name (sip.example.com)", s.Domain)
	}
	for _, r := range s.AppID {
		if r < 0x21 || r == 0x7f {
			return fmt.Errorf("sip.appid must be printable, without spaces")
		}
	}
	return nil
}
