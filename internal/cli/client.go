package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/convene/convene/internal/apiclient"
)

// How API commands find the API: --api, else $CONVENE_API, else the
// default address; --token, else $CONVENE_TOKEN, else the token file that
// `convene serve` writes in its data directory (.convene by default).
const (
	defaultAPIURL = "http://127.0.0.1:8080"
	apiTokenFile  = ".convene/token"
)

// apiConn is where an API command connects and with which token.
type apiConn struct {
	url   string
	token string
}

// withAPIClient adds --api and --token to cmd (and its subcommands); the
// connection it returns builds the client once the flags are parsed.
func withAPIClient(cmd *cobra.Command) *apiConn {
	c := &apiConn{}
	f := cmd.PersistentFlags()
	f.StringVar(&c.url, "api", "", "API address (default $CONVENE_API, else "+defaultAPIURL+")")
	f.StringVar(&c.token, "token", "", "API token (default $CONVENE_TOKEN, else the file "+apiTokenFile+")")
	return c
}

// client resolves the address and token and returns the API client.
func (c *apiConn) client() (*apiclient.Client, error) {
	base := firstNonEmpty(c.url, os.Getenv("CONVENE_API"), defaultAPIURL)
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	if _, err := url.Parse(base); err != nil {
		return nil, fmt.Errorf("API address %q: %w", base, err)
	}
	token := firstNonEmpty(c.token, os.Getenv("CONVENE_TOKEN"))
	if token == "" {
		data, err := os.ReadFile(filepath.FromSlash(apiTokenFile))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("no API token: pass --token, set CONVENE_TOKEN, or run this where `convene serve` wrote %s", apiTokenFile)
		case err != nil:
			return nil, fmt.Errorf("reading the API token: %w", err)
		}
		token = strings.TrimSpace(string(data))
	}
	c.url = base
	return apiclient.New(base, token), nil
}

// fail makes a client error readable: API errors print as
// "CODE: message"; a refused connection says where the CLI looked.
func (c *apiConn) fail(err error) error {
	if err == nil {
		return nil
	}
	var ae *apiclient.Error
	if errors.As(err, &ae) {
		escaped := *ae
		escaped.Message = printable(ae.Message)
		return &escaped
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("nothing answers at %s: start `convene serve`, or point --api or CONVENE_API at the API", c.url)
	}
	return err
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
