package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Service serves the account API on a listener of its own.
type Service struct {
	listen  string
	handler *Handler
	log     *slog.Logger
	srv     *http.Server
	ln      net.Listener
	ready   atomic.Bool
}

// ServiceOptions configure a Service.
type ServiceOptions struct {
	Options
	// Listen is the address to serve on; default 127.0.0.1:14500.
	Listen string
}

// DefaultListen is seed 003's port plan (14500-14700).
const DefaultListen = "127.0.0.1:14500"

// New builds a service; Start serves it.
func New(opts ServiceOptions, log *slog.Logger) (*Service, error) {
	h, err := NewHandler(opts.Options)
	if err != nil {
		return nil, err
	}
	if opts.Listen == "" {
		opts.Listen = DefaultListen
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{listen: opts.Listen, handler: h, log: log}, nil
}

// Handler is the account API, to mount at Path on another server.
func (s *Service) Handler() http.Handler { return s.handler }

// Start listens and serves in the background.
func (s *Service) Start(context.Context) error {
	ln, err := net.Listen("tcp", s.listen)
	if err != nil {
		return fmt.Errorf("account: listen on %s: %w", s.listen, err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, s.handler)
	s.ln = ln
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("account API stopped serving", "addr", ln.Addr().String(), "err", err)
		}
	}()
	s.ready.Store(true)
	s.log.Info("account API listening", "addr", ln.Addr().String())
	return nil
}

// Addr is the address served on (after Start).
func (s *Service) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Ready reports whether the service is serving.
func (s *Service) Ready() bool { return s.ready.Load() }

// Shutdown stops serving, letting requests in hand finish until ctx ends.
func (s *Service) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	if s.srv == nil {
		return nil
	}
	return s.srv.Shutdown(ctx)
}
