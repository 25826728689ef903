# Sourced by scripts/build-image and scripts/test.d/70-image.sh: a private Docker daemon with its
# own socket, data root and exec root, no bridge and no iptables rules (containers run with
# --network=host), so the host's firewall and /var/run/docker.sock are never touched.
# Installs Debian's docker.io (dockerd, containerd, runc and the BuildKit-capable client
# /usr/bin/docker) when dockerd is missing.

# The client with BuildKit built in: Debian's. A newer client elsewhere on PATH may lack buildx.
DOCKER=/usr/bin/docker

ensure_docker_installed() {
  if ! command -v dockerd >/dev/null || ! [ -x "$DOCKER" ]; then
    echo "installing Debian's docker.io"
    local sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
  fi
}

# start_private_dockerd DIR: starts dockerd under DIR (socket DIR/docker.sock) unless one already
# answers there; exports DOCKER_HOST. Sets DOCKERD_PID when it started one.
start_private_dockerd() {
  local dir="$1"
  mkdir -p "$dir"
  export DOCKER_HOST="unix://$dir/docker.sock"
  DOCKERD_PID=""
  if "$DOCKER" info >/dev/null 2>&1; then return 0; fi
  dockerd --host "$DOCKER_HOST" --data-root "$dir/root" --exec-root "$dir/exec" \
    --pidfile "$dir/docker.pid" --bridge=none --iptables=false --ip6tables=false \
    >"$dir/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 1 150); do
    "$DOCKER" info >/dev/null 2>&1 && return 0
    kill -0 "$DOCKERD_PID" 2>/dev/null || break
    sleep 0.2 # polling for the daemon, bounded to 30 s
  done
  tail -n 20 "$dir/dockerd.log" >&2
  echo "dockerd did not start (log: $dir/dockerd.log)" >&2
  return 1
}

# stop_private_dockerd DIR: ends the daemon started by start_private_dockerd (by its PID) and
# removes the nsfs mount dockerd leaves under its exec root.
stop_private_dockerd() {
  local dir="$1"
  if [ -n "${DOCKERD_PID:-}" ]; then
    kill -TERM "$DOCKERD_PID" 2>/dev/null || true
    wait "$DOCKERD_PID" 2>/dev/null || true
  fi
  umount "$dir/exec/netns/default" 2>/dev/null || true
}
