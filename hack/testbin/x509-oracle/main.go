// Command x509-oracle reports what Go's crypto/x509 (the parser kube-apiserver and
// kube-controller-manager use) sees in certificate requests, for csr-signer's
// parser-differential test. Standard library only, so it builds without network.
//
// Input: one base64 (standard alphabet) DER CertificationRequest per line on stdin.
// Output: one JSON object per input line on stdout, flushed after each line, so a
// test can keep one process open and ask about thousands of requests.
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
)

type attribute struct {
	Type string `json:"type"`
	// Value is the string Go decoded; nil when the value is not a string type.
	Value *string `json:"value"`
	// GoType names the Go type of a non-string value (e.g. int64, asn1.RawValue).
	GoType string `json:"goType,omitempty"`
}

type publicKey struct {
	Algorithm string `json:"algorithm"`
	Bits      int    `json:"bits,omitempty"`
	Exponent  string `json:"exponent,omitempty"`
	Curve     string `json:"curve,omitempty"`
}

type extension struct {
	Oid      string `json:"oid"`
	Critical bool   `json:"critical"`
	Value    string `json:"value"` // hex
}

type report struct {
	// Parsed: x509.ParseCertificateRequest returned no error.
	Parsed     bool   `json:"parsed"`
	ParseError string `json:"parseError,omitempty"`
	// SignatureValid: CheckSignature returned no error (what kube-apiserver requires at create).
	SignatureValid bool   `json:"signatureValid"`
	SignatureError string `json:"signatureError,omitempty"`
	// Subject as an RDN sequence: one list of attributes per RDN, in order.
	Subject    [][]attribute `json:"subject"`
	DNSNames   []string      `json:"dns"`
	Emails     []string      `json:"email"`
	IPs        []string      `json:"ip"` // hex of the 4 or 16 bytes, as Go holds them
	URIs       []string      `json:"uri"`
	PublicKey  *publicKey    `json:"publicKey"`
	Extensions []extension   `json:"extensions"`
	// BasicConstraintsCA: cA of a requested basicConstraints as encoding/asn1 reads it; nil when
	// absent or unreadable.
	BasicConstraintsCA *bool `json:"basicConstraintsCA"`
}

var oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}

func inspect(der []byte) report {
	r := report{Subject: [][]attribute{}, DNSNames: []string{}, Emails: []string{}, IPs: []string{}, URIs: []string{}, Extensions: []extension{}}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		r.ParseError = err.Error()
		return r
	}
	r.Parsed = true
	if err := csr.CheckSignature(); err != nil {
		r.SignatureError = err.Error()
	} else {
		r.SignatureValid = true
	}
	var rdns pkix.RDNSequence
	if _, err := asn1.Unmarshal(csr.RawSubject, &rdns); err == nil { // parsed already by ParseCertificateRequest
		for _, rdn := range rdns {
			attributes := []attribute{}
			for _, atv := range rdn {
				a := attribute{Type: atv.Type.String()}
				if s, ok := atv.Value.(string); ok {
					a.Value = &s
				} else {
					a.GoType = fmt.Sprintf("%T", atv.Value)
				}
				attributes = append(attributes, a)
			}
			r.Subject = append(r.Subject, attributes)
		}
	}
	r.DNSNames = append(r.DNSNames, csr.DNSNames...)
	r.Emails = append(r.Emails, csr.EmailAddresses...)
	for _, ip := range csr.IPAddresses {
		r.IPs = append(r.IPs, hex.EncodeToString(ip))
	}
	for _, uri := range csr.URIs {
		r.URIs = append(r.URIs, uri.String())
	}
	switch key := csr.PublicKey.(type) {
	case *rsa.PublicKey:
		r.PublicKey = &publicKey{Algorithm: "RSA", Bits: key.N.BitLen(), Exponent: fmt.Sprint(key.E)}
	case *ecdsa.PublicKey:
		r.PublicKey = &publicKey{Algorithm: "ECDSA", Curve: key.Curve.Params().Name}
	case ed25519.PublicKey:
		r.PublicKey = &publicKey{Algorithm: "Ed25519"}
	case nil:
		r.PublicKey = &publicKey{Algorithm: "unknown"}
	default:
		r.PublicKey = &publicKey{Algorithm: fmt.Sprintf("%T", key)}
	}
	for _, e := range csr.Extensions {
		r.Extensions = append(r.Extensions, extension{Oid: e.Id.String(), Critical: e.Critical, Value: hex.EncodeToString(e.Value)})
		if e.Id.Equal(oidBasicConstraints) {
			var constraints struct {
				IsCA       bool `asn1:"optional"`
				MaxPathLen int  `asn1:"optional,default:-1"`
			}
			if _, err := asn1.Unmarshal(e.Value, &constraints); err == nil {
				r.BasicConstraintsCA = &constraints.IsCA
			}
		}
	}
	return r
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	out := bufio.NewWriter(os.Stdout)
	encoder := json.NewEncoder(out)
	for in.Scan() {
		var r report
		der, err := base64.StdEncoding.DecodeString(in.Text())
		if err != nil {
			r = report{ParseError: "oracle: input line is not base64: " + err.Error()}
		} else {
			r = inspect(der)
		}
		if err := encoder.Encode(r); err != nil {
			fmt.Fprintln(os.Stderr, "x509-oracle:", err)
			os.Exit(1)
		}
		if err := out.Flush(); err != nil {
			os.Exit(1) // the reader went away; nothing left to report to
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "x509-oracle:", err)
		os.Exit(1)
	}
}
