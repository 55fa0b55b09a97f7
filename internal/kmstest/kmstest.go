// Package kmstest serves the KMS API in the test's own process, for tests
// that need a quick endpoint: one node's real engine on a real SQLite
// store, the real handler, SigV4 and TLS on 127.0.0.1. The suites that
// must run against a real cluster (interop, the SDK and CLI suites) use
// internal/testcluster instead; this is for package tests and for
// developing them. This package's own test runs the AWS CLI and boto3
// suites (interop/awscli.sh, interop/boto3.sh) against it.
package kmstest

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/openhsm/openhsm/audit"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/internal/enginetest"
	"github.com/openhsm/openhsm/kms"
	"github.com/openhsm/openhsm/kms/httpapi"
	"github.com/openhsm/openhsm/kms/sigv4"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/state"
)

// Server is a running in-process KMS endpoint.
type Server struct {
	URL             string // https://127.0.0.1:port
	CAFile          string // PEM of the server's certificate, for AWS_CA_BUNDLE
	Client          *http.Client
	Region          string
	AccessKeyID     string
	SecretAccessKey string
	Service         *kms.Service
	Engine          *engine.Engine
	Store           state.Store

	mu     sync.Mutex
	offset time.Duration
	events []audit.KMSEvent
}

// Advance moves the service's key life-cycle clock forward (never SigV4's).
func (s *Server) Advance(d time.Duration) { s.mu.Lock(); s.offset += d; s.mu.Unlock() }

// Events returns the audit events so far.
func (s *Server) Events() []audit.KMSEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]audit.KMSEvent(nil), s.events...)
}

// Start serves the KMS API until the test ends, with one principal, whose
// identity policy is kms.AdminPolicy (keys with the default key policy let
// it do everything).
func Start(t testing.TB) *Server {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	node := enginetest.Start(t)
	e, st := node.Engine, node.Store
	srv := &Server{Region: "us-east-1", Engine: e, Store: st}
	svc, err := kms.New(kms.Config{Engine: e, Clock: func() time.Time {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return time.Now().Add(srv.offset)
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Service = svc
	node.OnKMSChanged(svc.KMSChanged)
	cred, err := svc.CreatePrincipalWithPolicy(ctx, engine.Caller{User: enginetest.Officer, Role: object.RoleCO, Session: 1}, "tester", kms.AdminPolicy)
	if err != nil {
		t.Fatal(err)
	}
	srv.AccessKeyID, srv.SecretAccessKey = cred.AccessKeyID, cred.SecretAccessKey
	h := httpapi.New(httpapi.Config{
		Verifier: &sigv4.Verifier{Regions: sigv4.RegionSet("us-east-1", "eu-west-1")},
		Secrets:  svc,
		Service:  svc,
		Audit: func(ev audit.KMSEvent) {
			srv.mu.Lock()
			srv.events = append(srv.events, ev)
			srv.mu.Unlock()
		},
	})
	ts := httptest.NewTLSServer(h)
	t.Cleanup(ts.Close)
	srv.URL, srv.Client = ts.URL, ts.Client()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	srv.CAFile = ca
	return srv
}

// Env is the environment an AWS CLI, SDK or boto3 process needs to reach
// the server.
func (s *Server) Env() []string {
	return []string{"AWS_ENDPOINT_URL_KMS=" + s.URL, "AWS_ACCESS_KEY_ID=" + s.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretAccessKey, "AWS_REGION=" + s.Region, "AWS_DEFAULT_REGION=" + s.Region, "AWS_CA_BUNDLE=" + s.CAFile}
}
