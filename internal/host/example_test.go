package host_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/convene/convene/internal/host"
)

// greeterConfig is the plugin's configuration: the defaults live in
// newGreeterConfig, the one place.
type greeterConfig struct {
	Word string `yaml:"word"`
}

func newGreeterConfig() any { return &greeterConfig{Word: "hello"} }

// greeter is a server: it mounts a route in Provision, and has nothing to
// run.
type greeter struct{ word string }

func (g *greeter) Provision(ctx host.Context, cfg any) error {
	g.word = cfg.(*greeterConfig).Word
	return ctx.Mount(host.Route{Pattern: "GET /greet", Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, g.word, "from", ctx.HostName())
	})})
}

func (g *greeter) Start(context.Context) error { return nil }
func (g *greeter) Stop(context.Context) error  { return nil }

func init() {
	host.Register(host.Plugin{
		ID:     "example.greeter",
		Doc:    "says a word",
		Server: func() host.Server { return new(greeter) },
		Config: newGreeterConfig,
	})
}

func Example() {
	f, err := host.Parse("example.yaml", []byte(`
host: {name: demo}
servers:
  greeter: {plugin: example.greeter, word: hi}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	h, _ := host.New(f, host.Options{})
	ctx := context.Background()
	if err := h.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer h.Stop(ctx)
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	get := func() {
		resp, err := http.Get(srv.URL + "/greet")
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Print(resp.StatusCode, " ", string(body))
	}
	get()
	_ = h.StopPlugin(ctx, "example.greeter")
	get()
	_ = h.StartPlugin(ctx, "example.greeter")
	get()
	// Output:
	// 200 hi from demo
	// 503 {"error":{"code":"PLUGIN_STOPPED","message":"plugin example.greeter is stopped on host demo; start it with convene host start example.greeter"}}
	// 200 hi from demo
}

// A mistake in a host file names the file, the line, the key and what to
// do.
func Example_refused() {
	_, err := host.Parse("api.yaml", []byte(`
host: {name: demo}
servers:
  greeter: {plugin: example.greeter, wrod: hi}
`))
	fmt.Println(err)
	// Output:
	// HOST_CONFIG: api.yaml:4: servers.greeter.wrod: unknown key; did you mean "word"? (keys: word)
}
