#!/bin/sh
# The TLS scenarios' certificates, made afresh by bench/run.sh: a CA and a
# server leaf (SAN IP:127.0.0.1, DNS:localhost), P-256 keys, with the
# openssl CLI as test/support/certs.sh does.
#
#   sh bench/certs.sh DIR   # writes DIR/ca.pem, DIR/server.pem, DIR/server.key
set -eu
dir=$1
openssl=${OPENSSL:-openssl}
mkdir -p "$dir"
cd "$dir"
cat >ext.cnf <<'CNF'
[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ server ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
for k in ca server; do
	"$openssl" genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$k.key" 2>/dev/null
done
"$openssl" req -x509 -new -key ca.key -subj "/CN=gun bench CA" -days 30 -sha256 \
	-config ext.cnf -extensions ca_ext -out ca.pem
"$openssl" req -new -key server.key -subj "/CN=127.0.0.1" -out server.csr
"$openssl" x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 1 -days 30 -sha256 \
	-extfile ext.cnf -extensions server -out server.pem 2>/dev/null
rm -f server.csr ext.cnf
"$openssl" verify -CAfile ca.pem server.pem >/dev/null
