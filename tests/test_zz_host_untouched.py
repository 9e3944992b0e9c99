"""Runs last (the name sorts last): the whole suite left the real host's
network (links, iptables rules, ip_forward) and cgroups as it found them.
Network tests may only work inside their own network namespaces, and every
other test uses --network none and a private cgroup parent."""

import unittest

from tests import support


@support.requires_root
class HostUntouchedTest(unittest.TestCase):
    def test_host_network_and_cgroups_as_before_the_suite(self):
        after = support.host_snapshot()
        for key in ("links", "iptables", "ip_forward", "cgroups"):
            self.assertEqual(after.get(key), support.HOST_BEFORE.get(key), key)

    def test_every_container_of_the_suite_was_removed(self):
        self.assertEqual(support.container_records(), [])
        self.assertEqual(support.cgroup_dirs(), [])


if __name__ == "__main__":
    unittest.main()
