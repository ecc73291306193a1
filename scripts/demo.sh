#!/usr/bin/env bash
# The chat demo: installs dependencies, builds, starts chat_server on a free local port, a
# scripted second client ("bot") that greets and answers, and your own chat_client in this
# terminal. Type lines to chat; /quit (or Ctrl-D) ends it and stops everything it started.
#   scripts/demo.sh [NAME]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
tether_install_deps
name=${1:-${USER:-you}}

cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target chat_server chat_client >/dev/null
bin=build/release/examples

workdir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$workdir"
}
trap cleanup EXIT INT TERM

"$bin/chat_server" --port 0 >"$workdir/server.out" 2>"$workdir/server.log" &
pids+=($!)
for _ in $(seq 100); do
  port=$(sed -n 's/^listening on //p' "$workdir/server.out")
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "${port:-}" ] || { echo "chat_server did not start"; cat "$workdir/server.log"; exit 1; }
url="ws://127.0.0.1:$port/chat"
echo "chat_server listening on $url"

# The bot: its own chat_client, fed by a loop that answers what others say.
mkfifo "$workdir/bot.in"
"$bin/chat_client" --url "$url" --name bot <"$workdir/bot.in" >"$workdir/bot.out" 2>&1 &
bot_pid=$!
pids+=($bot_pid)
exec 3>"$workdir/bot.in"
(
  echo "hello! I am a scripted client. Say something and I will answer." >&3
  tail -n +1 -f --pid="$bot_pid" "$workdir/bot.out" | while IFS= read -r line; do
    case "$line" in
      \[*\]\ bot:*) ;;                                   # my own delivered lines
      \[*\]\ *:\ *) echo "bot heard: ${line#*] }" >&3 ;;  # someone else spoke
    esac
  done
) &
pids+=($!)

echo "You are '$name'. Type messages; /quit to leave."
"$bin/chat_client" --url "$url" --name "$name" || true
