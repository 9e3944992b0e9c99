"""iptables rules for bridge networks: what they are, and how they are applied.

The rules live in contain's own chains, so they can be listed and removed
without touching anyone else's, and every rule carries a comment naming its
owner, so it can be found again after a crash from nothing but that name:

    filter FORWARD     -> CONTAIN-FORWARD        (jump inserted first, "contain-base")
      CONTAIN-FORWARD     -> CONTAIN-ISOLATION1  (first rule, "contain-base")
                          per network "contain-network:BR":
                          -o BR ctstate RELATED,ESTABLISHED  ACCEPT  (replies)
                          -o BR ctstate DNAT                 ACCEPT  (published ports)
                          -i BR                              ACCEPT  (outbound, between containers)
      CONTAIN-ISOLATION1  -i BR ! -o BR -> CONTAIN-ISOLATION2
      CONTAIN-ISOLATION2  -o BR DROP       (nothing crosses from one network to another)

    nat PREROUTING  -m addrtype --dst-type LOCAL -> CONTAIN-DNAT
    nat OUTPUT      -m addrtype --dst-type LOCAL -> CONTAIN-DNAT   (the host's own connections)
    nat POSTROUTING                             -> CONTAIN-POSTROUTING
      CONTAIN-DNAT        per container "contain:ID": -p tcp --dport HOST -j DNAT --to IP:PORT
      CONTAIN-POSTROUTING per network:
                          -s SUBNET ! -o BR                MASQUERADE  (outbound NAT)
                          -s SUBNET -o BR ctstate DNAT     MASQUERADE  (hairpin: a container
                                                           reaching a published port of its network)
                          -s 127.0.0.0/8 -o BR             MASQUERADE  (published ports reached
                                                           via the host's 127.0.0.1)

Published ports are pure DNAT, without a userland proxy.  For 127.0.0.1 the
kernel refuses to route a loopback-sourced packet out of a real device unless
``route_localnet`` is set on it; network.py sets it on each bridge, and the
MASQUERADE above rewrites the source so the container can answer.

Changes go through one ``iptables-restore --noflush`` each.  Declaring a chain
(``:NAME``) in a restore file flushes it when it already exists, so existing
chains are never declared again: ``ensure()`` first reads ``iptables-save``
and adds only what is missing.  A container's published ports take one
restore to add (``-C`` lines check that the rest is in place, see add())
and one to remove (its own lines with ``-D``); anything else is removed by
reading the rules back and feeding the same lines with ``-D``, so the text
always matches what iptables-save prints.  Each program run costs some
milliseconds, and a restore that deletes rules ~10 more (nf_tables waits
for an RCU grace period as it closes its netlink socket).  Only
iptables-restore and iptables-save are run.
"""

import os

from ..errors import ContainError

FILTER_CHAINS = ("CONTAIN-FORWARD", "CONTAIN-ISOLATION1", "CONTAIN-ISOLATION2")
NAT_CHAINS = ("CONTAIN-DNAT", "CONTAIN-POSTROUTING")
CHAINS = {"filter": FILTER_CHAINS, "nat": NAT_CHAINS}
BASE_TAG = "contain-base"

_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def find_program(name):
    """The path of an executable found in $PATH, or None."""
    for directory in os.environ.get("PATH", _DEFAULT_PATH).split(os.pathsep):
        path = os.path.join(directory or ".", name)
        if os.access(path, os.X_OK) and not os.path.isdir(path):
            return path
    return None


def available():
    """Whether iptables-restore and iptables-save can be run."""
    return bool(find_program("iptables-restore") and find_program("iptables-save"))


# ------------------------------------------------------------------ the rules
def network_tag(bridge):
    return f"contain-network:{bridge}"


def container_tag(container_id):
    return f"contain:{container_id}"


def _c(tag):
    return f"-m comment --comment {tag}"


def base_rules():
    """The jumps into contain's chains: {table: [rule lines]}."""
    b = _c(BASE_TAG)
    return {
        "filter": [f"-I FORWARD {b} -j CONTAIN-FORWARD",
                   f"-I CONTAIN-FORWARD {b} -j CONTAIN-ISOLATION1"],
        "nat": [f"-I PREROUTING -m addrtype --dst-type LOCAL {b} -j CONTAIN-DNAT",
                f"-I OUTPUT -m addrtype --dst-type LOCAL {b} -j CONTAIN-DNAT",
                f"-I POSTROUTING {b} -j CONTAIN-POSTROUTING"],
    }


def network_rules(bridge, subnet):
    """The rules one bridge network needs: {table: [rule lines]}."""
    t = _c(network_tag(bridge))
    return {
        "filter": [
            f"-A CONTAIN-ISOLATION1 -i {bridge} ! -o {bridge} {t} -j CONTAIN-ISOLATION2",
            f"-A CONTAIN-ISOLATION2 -o {bridge} {t} -j DROP",
            f"-A CONTAIN-FORWARD -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED {t} -j ACCEPT",
            f"-A CONTAIN-FORWARD -o {bridge} -m conntrack --ctstate DNAT {t} -j ACCEPT",
            f"-A CONTAIN-FORWARD -i {bridge} {t} -j ACCEPT",
        ],
        "nat": [
            f"-A CONTAIN-POSTROUTING -s {subnet} ! -o {bridge} {t} -j MASQUERADE",
            f"-A CONTAIN-POSTROUTING -s {subnet} -o {bridge} -m conntrack --ctstate DNAT {t} -j MASQUERADE",
            f"-A CONTAIN-POSTROUTING -s 127.0.0.0/8 -o {bridge} {t} -j MASQUERADE",
        ],
    }


def container_rules(container_id, ip, ports):
    """DNAT rules for a container's published ports: {table: [rule lines]}."""
    t = _c(container_tag(container_id))
    lines = []
    for p in ports:
        dest = "" if p["host_ip"] in ("", "0.0.0.0") else f"-d {p['host_ip']}/32 "
        lines.append(f"-A CONTAIN-DNAT {dest}-p {p['proto']} -m {p['proto']} "
                     f"--dport {p['host_port']} {t} "
                     f"-j DNAT --to-destination {ip}:{p['container_port']}")
    return {"nat": lines} if lines else {}


def restore_text(changes, declare=None):
    """An iptables-restore file from {table: [lines]} (+ chains to create)."""
    declare = declare or {}
    out = []
    for table in ("filter", "nat"):
        if not changes.get(table) and not declare.get(table):
            continue
        out.append(f"*{table}")
        out += [f":{chain} - [0:0]" for chain in declare.get(table, ())]
        out += changes.get(table, [])
        out.append("COMMIT")
    return "\n".join(out) + "\n"


# ------------------------------------------------- reading iptables-save back
def parse_save(text):
    """iptables-save output -> {table: {"chains": set, "rules": [lines]}}."""
    tables, current = {}, None
    for line in text.splitlines():
        if line.startswith("*"):
            current = tables.setdefault(line[1:].strip(), {"chains": set(), "rules": []})
        elif current is None:
            continue
        elif line.startswith(":"):
            current["chains"].add(line[1:].split()[0])
        elif line.startswith("-A "):
            current["rules"].append(line)
    return tables


def comment_of(rule):
    """The --comment of a saved rule (quotes removed), or None."""
    words = rule.split()
    try:
        value = words[words.index("--comment") + 1]
    except (ValueError, IndexError):
        return None
    if value.startswith('"'):   # iptables-save quotes comments with ':' in them
        value = rule.split("--comment ", 1)[1][1:].split('"', 1)[0]
    return value


def _target(rule):
    words = rule.split()
    return words[words.index("-j") + 1] if "-j" in words else None


# --------------------------------------------------------------- applying them
def _run(program, text=None):
    import subprocess
    path = find_program(program)
    if path is None:
        raise ContainError(f"{program} not found: install iptables")
    argv = [path, "-w", "--noflush"] if program == "iptables-restore" else [path]
    res = subprocess.run(argv, input=text, capture_output=True, text=True)
    if res.returncode != 0:
        reason = (res.stderr.strip() or f"exit status {res.returncode}").splitlines()[-1]
        raise ContainError(f"{program} failed: {reason}")
    return res.stdout


def save():
    return parse_save(_run("iptables-save"))


def restore(changes, declare=None):
    if any(changes.values()) or any((declare or {}).values()):
        _run("iptables-restore", restore_text(changes, declare))


def missing(saved, networks):
    """What ensure() must add: (changes, declare), each {table: [...]}.

    networks: [(bridge, subnet)] of every bridge network that should have rules.
    """
    changes, declare = {"filter": [], "nat": []}, {"filter": [], "nat": []}
    for table, chains in CHAINS.items():
        have = saved.get(table, {"chains": set(), "rules": []})
        declare[table] = [c for c in chains if c not in have["chains"]]
        jumps = {(r.split()[1], _target(r)) for r in have["rules"]
                 if comment_of(r) == BASE_TAG}
        for rule in base_rules()[table]:
            if (rule.split()[1], _target(rule)) not in jumps:
                changes[table].append(rule)
        tags = {comment_of(r) for r in have["rules"]}
        for bridge, subnet in networks:
            if network_tag(bridge) not in tags:
                changes[table] += network_rules(bridge, subnet)[table]
    return changes, declare


def ensure(networks):
    """Create contain's chains, jumps and the given networks' rules where missing."""
    changes, declare = missing(save(), networks)
    restore(changes, declare)


def expected(networks):
    """{table: [rule lines]}: the jumps and the given networks' rules."""
    rules = base_rules()
    for bridge, subnet in networks:
        for table, lines in network_rules(bridge, subnet).items():
            rules[table] = rules[table] + lines
    return rules


def add(changes, networks):
    """Add rules to contain's chains, and in the same restore whatever of
    the chains, jumps and the networks' rules has gone missing (someone
    flushed them, or iptables was installed after the bridge was made).

    Usually nothing is missing, and one restore does it all: a -C line for
    each rule that should be there (a restore stops at the first rule that
    is absent, and commits nothing), then the new rules.  Only if that fails
    is iptables-save read to find what to heal."""
    if not any(changes.values()):
        return
    # (iptables-restore commits table by table, nat last: a check that fails
    # there commits none of a container's rules, which are all nat rules)
    checked = {table: ["-C" + rule[2:] for rule in lines] + changes.get(table, [])
               for table, lines in expected(networks).items()}
    try:
        restore(checked)
        return
    except ContainError:
        pass
    heal, declare = missing(save(), networks)
    for table, lines in changes.items():
        heal.setdefault(table, []).extend(lines)
    restore(heal, declare)


def removal(saved, tags, base=False):
    """-D lines for every saved rule whose comment is one of tags; with base,
    also the jumps into contain's chains and the chains themselves."""
    if base:
        tags = set(tags) | {BASE_TAG}
    changes = {table: ["-D" + rule[2:] for rule in t["rules"] if comment_of(rule) in tags]
               for table, t in saved.items() if table in CHAINS}
    if base:
        for table, chains in CHAINS.items():
            present = [c for c in chains if c in saved.get(table, {}).get("chains", ())]
            changes.setdefault(table, [])
            changes[table] += [f"-F {c}" for c in present] + [f"-X {c}" for c in present]
    return changes


def remove_added(changes, tags):
    """Delete the rules add(changes) added: the same lines with -D, in one
    restore (iptables matches a rule by what it does, not by its text).  If
    one of them is gone or was changed, that restore commits nothing, and
    every rule tagged with one of tags is removed as iptables-save shows it."""
    try:
        restore({table: ["-D" + rule[2:] for rule in lines] for table, lines in changes.items()})
    except ContainError:
        remove(tags)


def remove(tags, base=False):
    """Delete every rule whose comment is in tags (nothing if none is left);
    base: contain's chains and the jumps into them too."""
    for attempt in (1, 2):
        try:
            restore(removal(save(), set(tags), base))
            return
        except ContainError:
            if attempt == 2:   # a concurrent removal can win the race once
                raise
