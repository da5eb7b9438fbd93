#!/usr/bin/env bash
# Throwaway TLS material for the tests, made with the openssl CLI in DIR:
#   ca.pem            the test CA (clients trust it)
#   server.pem        for DNS:localhost and IP:127.0.0.1, signed by the CA
#   ip-only.pem       for IP:127.0.0.1 only (wss://localhost must be refused: hostname mismatch)
#   dns-only.pem      for DNS:localhost only (wss://127.0.0.1 must be refused: IP address mismatch)
#   expired.pem       as server.pem, but valid only during 2020
#   unknown-ca.pem    as server.pem, but signed by a CA nobody trusts
#   server2.pem       as server.pem (same CA, same names), another key and serial: a renewal
#   client.pem        a client certificate (extendedKeyUsage=clientAuth, CN "otsync test client"), signed by the CA
#   client-unknown-ca.pem  as client.pem, but signed by the CA nobody trusts
#   server-rsa.pem    as server.pem, but an RSA-2048 key: the TLS 1.2 ECDHE-RSA suites, and static-RSA
#                     (not forward-secret) suites a server must refuse, exist only with an RSA certificate
# Each server and client file is the certificate followed by its key, as HAProxy wants.
# EC P-256 keys (but server-rsa.pem): quick to make, and every TLS client takes them.
#
#   tests/support/make_test_certs.sh DIR
set -euo pipefail
dir="${1:?usage: $0 DIR}"
mkdir -p "$dir"
cd "$dir"

key() {  # key FILE: EC P-256, or RSA-2048 when KEY_ALG=rsa
  if [[ "${KEY_ALG:-ec}" == rsa ]]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null
  else
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
  fi
}

ca() {  # ca NAME CN: a self-signed CA certificate NAME.pem with key NAME.key
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 2 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}

# `openssl ca` rather than `x509 -req`: only it takes explicit validity dates
# (OpenSSL 3.0's x509 has -days alone), which the expired certificate needs.
cat >ca.cnf <<'EOF'
[ca]
default_ca = test_ca
[test_ca]
database = index.txt
new_certs_dir = issued
serial = serial
default_md = sha256
policy = any
copy_extensions = none
unique_subject = no
[any]
commonName = supplied
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = ${ENV::SAN}
[server_rsa]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = ${ENV::SAN}
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
EOF

issue() {  # issue EXTENSIONS CN NAME SIGNER SAN [START END]: NAME.pem = certificate + key
  local extensions="$1" cn="$2" name="$3" signer="$4" san="$5" start="${6:-}" end="${7:-}"
  key "$name.key"
  openssl req -new -key "$name.key" -out "$name.csr" -subj "/CN=$cn"
  : >index.txt
  [[ -f serial ]] || echo 1000 >serial
  mkdir -p issued
  local dates=(-days 2)
  [[ -n "$start" ]] && dates=(-startdate "$start" -enddate "$end")
  SAN="$san" openssl ca -batch -config ca.cnf -extensions "$extensions" -cert "$signer.pem" -keyfile "$signer.key" \
    -in "$name.csr" -out "$name.crt" -notext "${dates[@]}" 2>/dev/null
  cat "$name.crt" "$name.key" >"$name.pem"
  rm -f "$name.csr" "$name.crt" "$name.key"
}
server() { issue server "otsync test server" "$@"; }  # server NAME SIGNER SAN [START END]
# A client certificate: ca.cnf names ${ENV::SAN}, so it must be set, but the client extensions do not use it.
client() { issue client "otsync test client" "$1" "$2" "DNS:unused"; }  # client NAME SIGNER

ca ca "otsync test CA"
ca other-ca "an unknown CA"
server server ca "DNS:localhost,IP:127.0.0.1"
server ip-only ca "IP:127.0.0.1"
server dns-only ca "DNS:localhost"
server expired ca "DNS:localhost,IP:127.0.0.1" 20200101000000Z 20201231000000Z
server unknown-ca other-ca "DNS:localhost,IP:127.0.0.1"
server server2 ca "DNS:localhost,IP:127.0.0.1"
# (keyEncipherment as well, as RSA server certificates have it: a static-RSA key exchange is possible with it)
KEY_ALG=rsa issue server_rsa "otsync test server" server-rsa ca "DNS:localhost,IP:127.0.0.1"
client client ca
client client-unknown-ca other-ca
rm -rf index.txt* serial* issued ca.cnf other-ca.pem other-ca.key
