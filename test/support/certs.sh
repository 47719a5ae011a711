#!/bin/sh
# Test certificates for test/tls_SUITE.erl, made with the openssl CLI
# (OpenSSL 3.0: `openssl req -x509` for the CAs, `openssl x509 -req` for the
# leaves, and `openssl ca` with -startdate/-enddate for the expired one,
# since `x509 -req` cannot set dates in the past).
#
#   sh certs.sh DIR
#
# writes into DIR (created if needed), every key P-256 in PKCS#8 PEM:
#   ca.pem ca.key                 the test CA (unknown to the system's store)
#   good.pem good.key             leaf: SAN IP:127.0.0.1, DNS:localhost
#   wronghost.pem wronghost.key   leaf: SAN DNS:wrong.example.com only
#   expired.pem expired.key       leaf: like good, valid 2020-01-01..2021-01-01
#   localhost.pem localhost.key   leaf: SAN DNS:localhost only (for SNI)
#   selfsigned.pem selfsigned.key self-signed, SAN IP:127.0.0.1, DNS:localhost
#   clientca.pem clientca.key     a second CA, for client certificates
#   client.pem client.key         client leaf signed by clientca (clientAuth)
#   otherclient.pem otherclient.key  client leaf signed by ca (not clientca)
#   rsaca.pem rsaca.key           a CA with an RSA-2048 key
#   pss.pem pss.key               leaf like good, signed by rsaca with RSA-PSS
#                                 and a 20-byte salt (the default, so the
#                                 parameters say SHA-256 with salt 20): valid
#                                 for OpenSSL, refused by rustls's verifier,
#                                 which takes PSS only with the hash's length
set -eu

DIR=$1
OPENSSL=${OPENSSL:-/usr/bin/openssl}
mkdir -p "$DIR"
cd "$DIR"

cat > ext.cnf <<'EOF'
[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ good ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ wronghost ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.example.com
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ localhost ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ selfsigned ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash

[ client ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

key() {
	"$OPENSSL" genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
}

ca() {
	key "$1"
	"$OPENSSL" req -x509 -new -key "$1.key" -subj "/CN=$2" -days 3650 -sha256 \
		-config ext.cnf -extensions ca_ext -out "$1.pem"
}

# leaf NAME CN SECTION CA SERIAL
leaf() {
	key "$1"
	"$OPENSSL" req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
	"$OPENSSL" x509 -req -in "$1.csr" -CA "$4.pem" -CAkey "$4.key" -set_serial "$5" \
		-days 3650 -sha256 -extfile ext.cnf -extensions "$3" -out "$1.pem" 2>/dev/null
}

ca ca "gun test CA"
ca clientca "gun test client CA"
leaf good 127.0.0.1 good ca 1001
leaf wronghost wrong.example.com wronghost ca 1002
leaf localhost localhost localhost ca 1003
leaf client "gun test client" client clientca 1004
leaf otherclient "gun other client" client ca 1005

# The RSA-PSS leaf: an RSA CA, whose signature on the leaf is PSS.
"$OPENSSL" genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsaca.key 2>/dev/null
"$OPENSSL" req -x509 -new -key rsaca.key -subj "/CN=gun test RSA CA" -days 3650 -sha256 \
	-config ext.cnf -extensions ca_ext -out rsaca.pem
key pss
"$OPENSSL" req -new -key pss.key -subj "/CN=127.0.0.1" -out pss.csr
"$OPENSSL" x509 -req -in pss.csr -CA rsaca.pem -CAkey rsaca.key -set_serial 1007 \
	-days 3650 -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:20 \
	-extfile ext.cnf -extensions good -out pss.pem 2>/dev/null

key selfsigned
"$OPENSSL" req -x509 -new -key selfsigned.key -subj "/CN=127.0.0.1" -days 3650 -sha256 \
	-config ext.cnf -extensions selfsigned -out selfsigned.pem

# The expired leaf: `openssl ca` takes explicit dates.
mkdir -p ca_db
: > ca_db/index.txt
echo 1006 > ca_db/serial
cat > ca.cnf <<EOF
[ ca ]
default_ca = test_ca

[ test_ca ]
database = ca_db/index.txt
new_certs_dir = ca_db
serial = ca_db/serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none

[ any ]
commonName = supplied
EOF
key expired
"$OPENSSL" req -new -key expired.key -subj "/CN=127.0.0.1" -out expired.csr
"$OPENSSL" ca -batch -notext -config ca.cnf -cert ca.pem -keyfile ca.key \
	-startdate 20200101000000Z -enddate 20210101000000Z \
	-extfile ext.cnf -extensions good -in expired.csr -out expired.pem 2>/dev/null

rm -f ./*.csr
# Sanity: the leaves verify against their CA (except the expired one, by date).
"$OPENSSL" verify -CAfile ca.pem good.pem wronghost.pem localhost.pem otherclient.pem >/dev/null
"$OPENSSL" verify -CAfile clientca.pem client.pem >/dev/null
"$OPENSSL" verify -CAfile rsaca.pem pss.pem >/dev/null
"$OPENSSL" verify -CAfile ca.pem -no_check_time expired.pem >/dev/null
echo ok
