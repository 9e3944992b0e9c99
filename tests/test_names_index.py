"""The container names index (state.Store: names/<name> -> id symlinks):
the records stay the truth, stale links are replaced, old stores are indexed
on their first create.  Pure filesystem work on a temporary state root."""

import os
import shutil
import tempfile
import unittest

from contain.engine import state
from contain.errors import Conflict, NotFound, UsageError


class NamesIndexTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="contain-names-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.store = state.Store(self.root)

    def make(self, name):
        cid = state.new_id()
        self.store.create({"id": cid, "name": name}, {})
        return cid

    def link(self, name):
        return os.path.join(self.root, "names", name)

    def test_create_refuses_a_taken_name_and_finds_by_name(self):
        cid = self.make("web")
        self.assertEqual(os.readlink(self.link("web")), cid)
        with self.assertRaises(Conflict) as cm:
            self.make("web")
        self.assertIn(cid, str(cm.exception))
        self.assertEqual(self.store.find("web").id, cid)
        self.assertEqual(self.store.name_owner("web"), cid)

    def test_stale_links_are_replaced(self):
        self.make("first")
        os.symlink("f" * 64, self.link("gone"))         # its container was never made
        cid = self.make("gone")
        self.assertEqual(os.readlink(self.link("gone")), cid)
        os.symlink(cid, self.link("liar"))              # points at a container of another name
        with self.assertRaises(NotFound):
            self.store.find("liar")
        self.make("liar")

    def test_rename_moves_the_name_and_rm_frees_it(self):
        cid = self.make("old")
        self.store.rename("old", "new")
        self.assertFalse(os.path.lexists(self.link("old")))
        self.assertEqual(self.store.find("new").id, cid)
        self.make("old")                                # free again
        self.store.delete(cid)
        self.assertFalse(os.path.lexists(self.link("new")))
        self.make("new")

    def test_a_store_without_the_index_is_indexed_on_its_first_create(self):
        cid = self.make("kept")
        shutil.rmtree(os.path.join(self.root, "names"))
        self.assertEqual(self.store.find("kept").id, cid)   # records alone
        with self.assertRaises(Conflict):
            self.make("kept")
        self.assertEqual(os.readlink(self.link("kept")), cid)

    def test_an_old_store_is_indexed_despite_an_overlong_name_and_a_crash(self):
        # a name from before the length limit gets no link (it is found by id);
        # what a crash left of an index being built is cleared
        cid = self.make("long")
        config = os.path.join(self.root, "containers", cid, "config.json")
        state.write_json(config, {"id": cid, "name": "n" * 300})
        shutil.rmtree(os.path.join(self.root, "names"))
        os.mkdir(os.path.join(self.root, "names.new"))
        os.symlink(cid, os.path.join(self.root, "names.new", "leftover"))
        other = self.make("other")
        self.assertEqual(sorted(os.listdir(os.path.join(self.root, "names"))), ["other"])
        self.assertFalse(os.path.lexists(os.path.join(self.root, "names.new")))
        self.assertEqual(self.store.find(cid).id, cid)
        self.assertEqual(self.store.find("other").id, other)

    def test_damaged_record_keeps_its_name(self):
        cid = self.make("broken")
        with open(os.path.join(self.root, "containers", cid, "state.json"), "w") as f:
            f.write("{not json")
        with self.assertRaises(Conflict):
            self.make("broken")
        self.assertEqual(self.store.find("broken", damaged=True).id, cid)

    def test_a_name_too_long_for_a_link_is_refused_in_one_line(self):
        with self.assertRaises(UsageError):
            self.make("n" * 300)
        self.assertEqual(self.store.ids(), [])


if __name__ == "__main__":
    unittest.main()
