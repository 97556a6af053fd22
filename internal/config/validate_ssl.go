package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"regexp"
	"strings"
)

// Validate checks a single SSL against APISIX's rules and returns every problem
// as FieldErrors with paths starting at "ssl". Besides the schema it parses
// every certificate and key and checks that each key belongs to its
// certificate, which is pure CPU work and so belongs here rather than in
// Build. Keys never appear in the messages.
func (s *SSL) Validate() error {
	var es FieldErrors
	validateSSL(s, "ssl", &es)
	return es.err()
}

func validateSSL(s *SSL, p string, es *FieldErrors) {
	validateMeta(p, s.ID, "", s.Desc, s.Labels, es)
	typ := orDefault(s.Type, DefaultSSLType)
	if typ != "server" && typ != "client" {
		es.add(join(p, "type"), "must be one of server, client")
	}
	if s.Status != nil && *s.Status != 0 && *s.Status != 1 {
		es.add(join(p, "status"), "must be one of 0, 1")
	}
	validateSNIs(s, p, typ, es)

	if s.Cert == "" {
		es.add(join(p, "cert"), "is required")
	}
	if s.Key == "" {
		es.add(join(p, "key"), "is required")
	}
	validateCertKey(join(p, "cert"), join(p, "key"), "cert", s.Cert, s.Key, es)

	// APISIX pairs certs[i] with keys[i] and requires equal lengths.
	certs, keys := join(p, "certs"), join(p, "keys")
	for i := range min(len(s.Certs), len(s.Keys)) {
		validateCertKey(index(certs, i), index(keys, i), index("certs", i), s.Certs[i], s.Keys[i], es)
	}
	for i := len(s.Keys); i < len(s.Certs); i++ {
		validateCertKey(index(certs, i), "", "", s.Certs[i], "", es)
	}
	if len(s.Certs) != len(s.Keys) {
		es.add(join(p, "keys"), "must have as many items as certs (%d), got %d", len(s.Certs), len(s.Keys))
	}

	if s.Client != nil {
		validateSSLClient(join(p, "client"), s.Client, es)
	}
	validateSSLProtocols(join(p, "ssl_protocols"), s.SSLProtocols, es)
}

// validateSNIs applies APISIX's rule for server certificates (exactly one of sni
// and snis) and the host pattern to every name. A client certificate is chosen
// by id, so it needs neither.
func validateSNIs(s *SSL, p, typ string, es *FieldErrors) {
	if s.SNI != "" {
		validateHost(join(p, "sni"), s.SNI, es)
	}
	if s.SNIs != nil {
		// APISIX requires at least one item but allows repeats.
		if len(s.SNIs) == 0 {
			es.add(join(p, "snis"), "must have at least 1 item")
		}
		for i, h := range s.SNIs {
			validateHost(index(join(p, "snis"), i), h, es)
		}
	}
	if typ != "server" {
		return
	}
	switch {
	case s.SNI != "" && s.SNIs != nil:
		es.add(join(p, "snis"), "must not be set together with sni")
	case s.SNI == "" && s.SNIs == nil:
		es.add(join(p, "snis"), "is required for type server (or set sni)")
	}
}

func validateSSLClient(p string, c *SSLClient, es *FieldErrors) {
	if c.CA == "" {
		es.add(join(p, "ca"), "is required")
	} else if !isSecretRef(c.CA) {
		msg := certLengthMsg(c.CA)
		if msg == "" {
			msg = parseCertsPEM(c.CA)
		}
		if msg != "" {
			es.add(join(p, "ca"), "%s", msg)
		}
	}
	if c.Depth != nil && *c.Depth < 0 {
		es.add(join(p, "depth"), "must be >= 0")
	}
	if c.SkipMTLSURIRegex != nil {
		// APISIX matches these with PCRE; sluice uses Go's RE2 syntax, so a
		// pattern RE2 cannot compile is rejected here rather than at run time.
		validateList(join(p, "skip_mtls_uri_regex"), c.SkipMTLSURIRegex, es, func(ip, re string, es *FieldErrors) {
			if _, err := regexp.Compile(re); err != nil {
				es.add(ip, "must be a valid regular expression: %s", err.Error())
			}
		})
	}
}

func validateSSLProtocols(p string, protos []string, es *FieldErrors) {
	seen := make(map[string]bool, len(protos))
	for i, v := range protos {
		switch {
		case seen[v]:
			es.add(index(p, i), "duplicate value %q", v)
		case v != "TLSv1.1" && v != "TLSv1.2" && v != "TLSv1.3":
			es.add(index(p, i), "must be one of TLSv1.1, TLSv1.2, TLSv1.3")
		}
		seen[v] = true
	}
}

// isSecretRef reports whether v refers to a secret rather than holding it, as
// APISIX's secret.is_secret_ref decides: a "$secret://" prefix, or "$env://" in
// any case. APISIX skips schema checks for such values, and so does sluice.
func isSecretRef(v string) bool {
	return strings.HasPrefix(v, "$secret://") || strings.HasPrefix(strings.ToUpper(v), "$ENV://")
}

// validateCertKey checks one certificate and key pair at the paths certPath and
// keyPath; certName names the certificate field in the key's messages. An empty
// keyPath checks the certificate alone. Messages about the key never quote it.
func validateCertKey(certPath, keyPath, certName, cert, key string, es *FieldErrors) {
	// APISIX skips every check of a secret reference, and parses a pair only
	// when neither half is one.
	certRef, keyRef := isSecretRef(cert), isSecretRef(key)
	parse := !certRef && !keyRef
	certOK := false
	if cert != "" && !certRef {
		msg := certLengthMsg(cert)
		if msg == "" && parse {
			msg = parseCertsPEM(cert)
			certOK = msg == ""
		}
		if msg != "" {
			es.add(certPath, "%s", msg)
		}
	}
	if keyPath == "" || key == "" || keyRef {
		return
	}
	switch {
	case len(key) < minClientKey || len(key) > maxCertOrKeyLen:
		es.add(keyPath, "must be between %d and %d characters", minClientKey, maxCertOrKeyLen)
	case !parse:
	case !parseKeyPEM(key):
		es.add(keyPath, "must be an unencrypted PEM private key (PKCS #1, PKCS #8 or SEC 1)")
	case certOK:
		checkKeyMatches(keyPath, certName, cert, key, es)
	}
}

// checkKeyMatches reports a key that does not belong to its certificate.
func checkKeyMatches(p, certName, cert, key string, es *FieldErrors) {
	_, err := tls.X509KeyPair([]byte(cert), []byte(key))
	switch {
	case err == nil:
	case strings.Contains(err.Error(), "does not match"):
		// crypto/tls reports a different key and a different key type this
		// way; its messages are fixed strings without key material.
		es.add(p, "does not match the certificate in %s", certName)
	default:
		es.add(p, "cannot be used with %s: %s", certName, err.Error())
	}
}

func certLengthMsg(cert string) string {
	if len(cert) < minClientCert || len(cert) > maxCertOrKeyLen {
		return fmt.Sprintf("must be between %d and %d characters", minClientCert, maxCertOrKeyLen)
	}
	return ""
}

// parseCertsPEM checks that s holds one or more PEM certificates and nothing
// else, returning a message or "". Other block types are refused: a private key
// pasted into a certificate field would be returned by the Admin API, which
// hides only the key fields.
func parseCertsPEM(s string) string {
	rest := []byte(s)
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return fmt.Sprintf("must hold only CERTIFICATE PEM blocks, found a %q block", b.Type)
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Sprintf("certificate %d: %s", n+1, err.Error())
		}
		n++
	}
	if n == 0 {
		return "must be a PEM certificate (-----BEGIN CERTIFICATE-----)"
	}
	return ""
}

// parseKeyPEM reports whether s holds a PEM private key Go can parse. Like
// crypto/tls it uses the first block whose type ends in "PRIVATE KEY", skipping
// others such as "EC PARAMETERS".
func parseKeyPEM(s string) bool {
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return false
		}
		if b.Type != "PRIVATE KEY" && !strings.HasSuffix(b.Type, " PRIVATE KEY") {
			continue
		}
		if _, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
			return true
		}
		if _, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
			return true
		}
		_, err := x509.ParseECPrivateKey(b.Bytes)
		return err == nil
	}
}
