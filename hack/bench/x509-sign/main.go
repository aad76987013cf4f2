// Command x509-sign is the Go side of `make bench-sign`: Go's crypto/x509 (what
// kube-controller-manager's signer uses) doing, per certificate, the work csr-signer's
// issuance path does: decode the PEM CSR, parse it, verify its signature, build the
// certificate from the same profile, sign it, PEM-encode it and append the CA chain.
// Standard library only, so it builds without network; run with GOMAXPROCS=1 (it also
// sets it) on the core the Node side is pinned to.
//
// Protocol (stdin/stdout, one JSON value per line), so that the Node side can interleave
// short slices of both on a shared machine instead of comparing two separate runs:
//   - first line in: the setup (the CA's certificate and key PEM, the chain PEM that follows a
//     leaf, the CSRs, the profile); out: one issued chain (after a warm-up), which the Node
//     side compares with its own, and Go's version;
//   - then each line in: {"seconds": s}; out: {"count": n, "seconds": elapsed, "cpuSeconds": c},
//     n certificates issued in that slice, c the CPU time (user and system, all threads) it took.
//     The program ends when stdin closes.
package main

import (
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"os"
	"runtime"
	"syscall"
	"time"
)

type input struct {
	CACertificatePem string   `json:"caCertificatePem"`
	CAKeyPem         string   `json:"caKeyPem"`
	ChainPem         string   `json:"chainPem"`
	Requests         []string `json:"requests"`
	URIs             []string `json:"uris"`
	LifetimeSeconds  int64    `json:"lifetimeSeconds"`
	// ChainNotAfter bounds the leaf as csr-signer's does (earliest NotAfter up to the root).
	ChainNotAfter time.Time `json:"chainNotAfter"`
}

type ready struct {
	SampleChainPem string `json:"sampleChainPem"`
	GoVersion      string `json:"goVersion"`
}

type slice struct {
	Seconds float64 `json:"seconds"`
}

type sliceResult struct {
	Count      int     `json:"count"`
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpuSeconds"`
}

// cpuSeconds is this process's CPU time so far, user and system, all threads (GC included).
func cpuSeconds() float64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		panic(err) // cannot fail with RUSAGE_SELF and a valid pointer
	}
	seconds := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return seconds(usage.Utime) + seconds(usage.Stime)
}

type issuer struct {
	certificate *x509.Certificate
	key         crypto.Signer
	chainPem    []byte
	uris        []string
	lifetime    time.Duration
	notAfter    time.Time
}

var serialLimit = new(big.Int).Lsh(big.NewInt(1), 128)

// subjectKeyId is SHA-1 of the subjectPublicKey bits (RFC 5280 4.2.1.2 method 1), as
// csr-signer computes it; Go would otherwise generate a truncated SHA-256 one.
func subjectKeyId(spki []byte) ([]byte, error) {
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		return nil, err
	}
	sum := sha1.Sum(info.PublicKey.Bytes)
	return sum[:], nil
}

// issue is the measured unit: one CSR in, one PEM chain out.
func (ca *issuer) issue(requestPem string) ([]byte, error) {
	block, rest := pem.Decode([]byte(requestPem))
	if block == nil || block.Type != "CERTIFICATE REQUEST" || len(rest) != 0 {
		return nil, errors.New("not one CERTIFICATE REQUEST PEM block")
	}
	request, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, err
	}
	if err := request.CheckSignature(); err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, serialLimit)
	if err != nil {
		return nil, err
	}
	skid, err := subjectKeyId(request.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, err
	}
	uris := make([]*url.URL, len(ca.uris))
	for i, uri := range ca.uris {
		if uris[i], err = url.Parse(uri); err != nil {
			return nil, err
		}
	}
	now := time.Now()
	notAfter := now.Add(ca.lifetime).Truncate(time.Second)
	if notAfter.After(ca.notAfter) {
		notAfter = ca.notAfter
	}
	notBefore := now.Add(-5 * time.Minute).Truncate(time.Second)
	if notBefore.Before(ca.certificate.NotBefore) {
		notBefore = ca.certificate.NotBefore
	}
	template := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		SubjectKeyId:          skid,
		URIs:                  uris, // empty subject: Go marks the SAN extension critical, as csr-signer does
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca.certificate, request.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ca.chainPem...), nil
}

func load(in *input) (*issuer, error) {
	certBlock, _ := pem.Decode([]byte(in.CACertificatePem))
	if certBlock == nil {
		return nil, errors.New("no CA certificate PEM")
	}
	certificate, err := x509.ParseCertificate(certBlock.Bytes)
	if err != nil {
		return nil, err
	}
	keyBlock, _ := pem.Decode([]byte(in.CAKeyPem))
	if keyBlock == nil {
		return nil, errors.New("no CA key PEM")
	}
	var key any
	switch keyBlock.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(keyBlock.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(keyBlock.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(keyBlock.Bytes)
	default:
		err = fmt.Errorf("unknown key block %s", keyBlock.Type)
	}
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("CA key cannot sign")
	}
	return &issuer{
		certificate: certificate,
		key:         signer,
		chainPem:    []byte(in.ChainPem),
		uris:        in.URIs,
		lifetime:    time.Duration(in.LifetimeSeconds) * time.Second,
		notAfter:    in.ChainNotAfter,
	}, nil
}

func run() error {
	runtime.GOMAXPROCS(1)
	decoder := json.NewDecoder(os.Stdin)
	encoder := json.NewEncoder(os.Stdout) // one line per value, unbuffered
	var in input
	if err := decoder.Decode(&in); err != nil {
		return err
	}
	if len(in.Requests) == 0 {
		return errors.New("no requests")
	}
	ca, err := load(&in)
	if err != nil {
		return err
	}
	var sample []byte
	for i := 0; i < 200; i++ { // warm-up, as the Node side does
		if sample, err = ca.issue(in.Requests[i%len(in.Requests)]); err != nil {
			return err
		}
	}
	if err := encoder.Encode(ready{SampleChainPem: string(sample), GoVersion: runtime.Version()}); err != nil {
		return err
	}
	count := 0
	for {
		var next slice
		if err := decoder.Decode(&next); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		started, startedCPU := time.Now(), cpuSeconds()
		deadline := started.Add(time.Duration(next.Seconds * float64(time.Second)))
		sliceCount := 0
		for time.Now().Before(deadline) {
			for i := 0; i < 50; i++ {
				if _, err := ca.issue(in.Requests[count%len(in.Requests)]); err != nil {
					return err
				}
				count++
				sliceCount++
			}
		}
		if err := encoder.Encode(sliceResult{
			Count:      sliceCount,
			Seconds:    time.Since(started).Seconds(),
			CPUSeconds: cpuSeconds() - startedCPU,
		}); err != nil {
			return err
		}
	}
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "x509-sign:", err)
		os.Exit(1)
	}
}
