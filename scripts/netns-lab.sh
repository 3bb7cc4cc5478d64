#!/usr/bin/env bash
# A network-namespace lab for trying load from several hosts on one machine (needs root):
#
#   <P>S  the server's namespace: bridge fbbr0 at 198.18.0.1/24
#   <P>A  agent A: eth0 at 198.18.0.2/24, a veth pair to the bridge
#   <P>B  agent B: eth0 at 198.18.0.3/24, a veth pair to the bridge
#
# <P> is $NETNS_LAB_PREFIX (default "fb", so fbS, fbA, fbB). The addresses come from the
# benchmarking range 198.18.0.0/15 and exist only inside these namespaces: there is no route
# out of them, so nothing in the lab can reach any other address.
#
#   scripts/netns-lab.sh up      create the namespaces (fails if they exist)
#   scripts/netns-lab.sh down    remove them (and everything in them); no error if absent
#   scripts/netns-lab.sh status  list them with their addresses
#
# Try it (see README "Several hosts"):
#   ip netns exec fbS fanbench serve --runtime tokio --addr 198.18.0.1:4222 &
#   fanbench run --target 198.18.0.1:4222 --label tokio --workload fanout-100 \
#     --agent 'ip netns exec fbA fanbench agent --stdio' \
#     --agent 'ip netns exec fbB fanbench agent --stdio'
set -euo pipefail

P="${NETNS_LAB_PREFIX:-fb}"
SERVER="${P}S"
AGENTS=("${P}A" "${P}B")
SERVER_ADDR=198.18.0.1
AGENT_ADDRS=(198.18.0.2 198.18.0.3)

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "netns-lab: creating network namespaces needs root" >&2
        exit 1
    fi
}

down() {
    for ns in "$SERVER" "${AGENTS[@]}"; do
        if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
            ip netns del "$ns"
        fi
    done
}

up() {
    need_root
    for ns in "$SERVER" "${AGENTS[@]}"; do
        if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
            echo "netns-lab: namespace $ns exists already (run: $0 down)" >&2
            exit 1
        fi
    done
    # Half-built labs are removed again.
    trap 'down' ERR
    ip netns add "$SERVER"
    ip -n "$SERVER" link set lo up
    # No STP and no forward delay: the ports forward as soon as they are up.
    ip -n "$SERVER" link add fbbr0 type bridge stp_state 0 forward_delay 0
    ip -n "$SERVER" addr add "$SERVER_ADDR/24" dev fbbr0
    ip -n "$SERVER" link set fbbr0 up
    for i in "${!AGENTS[@]}"; do
        ns="${AGENTS[$i]}"
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip -n "$SERVER" link add "veth$i" type veth peer name eth0 netns "$ns"
        ip -n "$SERVER" link set "veth$i" master fbbr0
        ip -n "$SERVER" link set "veth$i" up
        ip -n "$ns" addr add "${AGENT_ADDRS[$i]}/24" dev eth0
        ip -n "$ns" link set eth0 up
    done
    trap - ERR
    echo "netns-lab: up: server $SERVER at $SERVER_ADDR, agents ${AGENTS[*]} at ${AGENT_ADDRS[*]}"
}

status() {
    for ns in "$SERVER" "${AGENTS[@]}"; do
        if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
            echo "$ns: $(ip -n "$ns" -br addr show | awk '$1 != "lo" {print $1, $3}' | tr '\n' ' ')"
        else
            echo "$ns: absent"
        fi
    done
}

case "${1:-}" in
    up) up ;;
    down) need_root; down ;;
    status) status ;;
    *)
        echo "usage: $0 up|down|status (namespaces ${SERVER} ${AGENTS[*]}; prefix from NETNS_LAB_PREFIX)" >&2
        exit 2
        ;;
esac
