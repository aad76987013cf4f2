module csr-signer.io/testbin/x509-oracle

go 1.26.0
