module csr-signer.io/bench/x509-sign

go 1.26.0
