package hsmd

// What the node's HTTP ports of their own share: the KMS API ([kms]), the
// XKS proxy ([xks]) and the metrics ([metrics]). Each checks its listen
// address with checkListen, opens its port at the start of Serve, and
// serves and stops it through httpPort.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"
)

// checkListen checks the listen address of a section that serves HTTP on
// a port of its own: host:port with a port number, and plain HTTP (tlsOn
// false) only on a loopback host. serves names what the section serves,
// for the error of a missing address. The answer is the host; the errors
// name the key without the section.
func checkListen(listen string, tlsOn bool, section, serves string) (string, error) {
	if listen == "" {
		return "", fmt.Errorf("listen: required (leave out the [%s] section to serve no %s)", section, serves)
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("listen: %q is not host:port", listen)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || strconv.FormatUint(p, 10) != port {
		return "", fmt.Errorf("listen: %q has no port number from 0 to 65535", listen)
	}
	if !tlsOn && !loopbackHost(host) {
		return "", fmt.Errorf("tls: plain HTTP (tls = false) is allowed only on a loopback address, and %q is not one; "+
			"leave tls out (HTTPS with the node certificate) or listen on 127.0.0.1", listen)
	}
	return host, nil
}

// onLoopback says whether ln listens on a loopback address: what a
// loopback-only port checks once it listens, whatever the resolver made of
// its host ("localhost").
func onLoopback(ln net.Listener) bool {
	ta, ok := ln.Addr().(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// httpPort is one of the node's HTTP ports: its listener (open from the
// start of Serve), its TLS (nil for plain HTTP) and the server the API
// builds.
type httpPort struct {
	section  string // "kms", "xks", "metrics": the config section, for errors
	ln       net.Listener
	tls      *tls.Config
	srv      *http.Server
	stopWait time.Duration // how long shutdown lets requests in flight run
}

// serve writes addrFile (if set), logs msg with the address, the scheme
// and attrs, and serves until shutdown; the channel receives the error
// that ended the server, nil after shutdown.
func (p *httpPort) serve(log *slog.Logger, addrFile, msg string, attrs ...any) (<-chan error, error) {
	addr := p.ln.Addr().String()
	if addrFile != "" {
		if err := writeAddrFile(addrFile, addr); err != nil {
			return nil, fmt.Errorf("%s.addr_file: %v", p.section, err)
		}
	}
	scheme := "https"
	if p.tls == nil {
		scheme = "http"
	}
	log.Info(msg, append([]any{"addr", addr, "scheme", scheme}, attrs...)...)
	done := make(chan error, 1)
	go func() {
		var err error
		if p.tls != nil {
			err = p.srv.ServeTLS(p.ln, "", "")
		} else {
			err = p.srv.Serve(p.ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	return done, nil
}

// shutdown stops taking connections, lets requests in flight finish (for
// at most stopWait), and closes the listener. It is safe to call more than
// once, and before serve.
func (p *httpPort) shutdown() {
	if p.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), p.stopWait)
		defer cancel()
		if err := p.srv.Shutdown(ctx); err != nil {
			p.srv.Close()
		}
	}
	// Shutdown closes the listener only if Serve ran.
	p.ln.Close()
}

// httpAPIServer is the HTTP server of a node's HTTP port: bounded header,
// read, write and idle times, 64 KiB of headers, and no HTTP/2 (see
// kmsTLSConfig).
func httpAPIServer(h http.Handler, tc *tls.Config, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tc,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		// Handshakes that fail (a health check that hangs up, a client
		// that distrusts the CA) are the client's business: debug only.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}
