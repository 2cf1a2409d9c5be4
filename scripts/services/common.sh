# Shared by the service scripts here (sourced): a free loopback port and a Debian package
# install that parallel callers do once.

# A port nothing on 127.0.0.1 answers on, below Linux's ephemeral range (32768 on), so no
# outgoing connection holds it. A race with another starter is the caller's to catch.
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((10000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  echo "$(basename "$0"): no free port found" >&2
  return 1
}

# apt_install CHECK PACKAGE...: installs the packages (apt-get update first) unless the
# command CHECK succeeds, under a lock so that parallel callers install once.
apt_install() {
  local check=$1
  shift
  eval "$check" && return 0
  exec 9>/tmp/shardgate-apt-install.lock
  flock 9
  if ! eval "$check"; then
    echo "$(basename "$0"): installing Debian's $*" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" >&2
  fi
  flock -u 9
  exec 9>&-
}
