#!/usr/bin/env bash
# Installs the Debian packages the lab (or the benchmark) needs, where they are missing.
set -euo pipefail
want=()
need() { command -v "$1" >/dev/null 2>&1 || want+=("$2"); }
case "${1:-lab}" in
  lab)   need ip iproute2; need nft nftables; need sysctl procps; need setpriv util-linux; need jq jq
         need chromium chromium; need chromedriver chromium-driver ;;
  bench) need ip iproute2; need iperf3 iperf3; need socat socat; need haproxy haproxy
         need nginx nginx-light
         [[ -e /usr/lib/nginx/modules/ngx_stream_module.so ]] || want+=(libnginx-mod-stream) ;;
esac
((${#want[@]})) || exit 0
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "missing: ${want[*]} (install them; the lab tests will say they cannot run)" >&2
  exit 0
fi
echo "installing: ${want[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq "${want[@]}" >/dev/null
