# The app's error paths, through AT-SPI under Xvfb with a real phyllod and
# QEMU: a start that QEMU refuses shows, in the window, the sentence phyllo
# prints; "This computer" shows the host check; phyllod going away shows a
# banner, and when it is back the banner goes and the window follows the
# VMs again (one made meanwhile appears).  No guest boots.
import os
import applib as A

A.setup()
home = A.home
bad = os.path.join(home, "guest", "not-a-kernel")
with open(bad, "w") as f:
    f.write("this is not a kernel\n")
os.chmod(bad, 0o644)
r = A.phyllo("create", "bad", "--profile", "linux", "--kernel", bad, "--display", "none", "--memory", "128M",
             "--cpus", "1", "--no-uefi", "--no-disk")
A.ok(r.returncode == 0, "a VM whose kernel QEMU cannot load", r.stderr)
pd = A.phyllod_start()
A.atspi_init()
app = A.app_start()
A.ok(A.wait_for(lambda: A.find("Virtual machine bad"), 60, "the card"), "the window lists the VM")
state = lambda vm: A.text_of(A.find("State of " + vm)) if A.find("State of " + vm) else None
A.is_(state("bad"), "Stopped", "its card says Stopped")

# ---- definitions made and removed elsewhere arrive as events ----
r = A.phyllo("create", "cli-made", "--profile", "linux", "--kernel", bad, "--display", "none", "--memory", "128M",
             "--cpus", "1", "--no-uefi", "--no-disk")
A.ok(A.wait_for(lambda: A.find("Virtual machine cli-made"), 30, "the card"),
     "a VM phyllo creates appears in the window (a 'defined' event)")
A.phyllo("delete", "cli-made", "--yes")
A.ok(A.wait_for(lambda: not A.find("Virtual machine cli-made", visible=False), 30, "the card to go"),
     "and goes when phyllo deletes it")

# ---- a start QEMU refuses ----
A.click(A.find("Start bad", "push button"))
err = A.wait_for(lambda: A.find("Error", "label"), 120, "the error")
shown = A.text_of(err) if err else ""
cli = A.phyllo("start", "bad", check=False)
sentence = cli.stderr.strip()
A.ok(cli.returncode != 0 and sentence.startswith("phyllo: "), "phyllo start refuses it too", cli.stderr)
A.is_(shown, sentence[len("phyllo: "):], "the window shows the sentence phyllo prints")
A.ok("kernel" in shown.lower() or "qemu" in shown.lower(), "the sentence says what QEMU refused", shown)
A.ok(state("bad") in ("Stopped", "Crashed", "Failed to start"), "the card does not say Running", state("bad"))
A.shot("error")
A.click(A.find("Close the message", "push button"))

# ---- properties: CPUs, snapshots, clone; an error in the dialog ----
A.click(A.find("Properties of bad", "push button"))
props = A.wait_for(lambda: A.find("Properties of bad", "dialog"), 30, "the properties")
A.ok(props is not None, "Properties of a VM opens")
conf = os.path.join(home, "vms", "bad", "vm.conf")
cpus = A.wait_for(lambda: A.find("CPUs", "spin button", root=props), 10, "CPUs")
A.wait_for(lambda: "name = bad" in A.text_of(A.find("Effective definition", visible=False, root=props)), 30,
           "the definition")
cpus.set_current_value(2) if hasattr(cpus, "set_current_value") else cpus.get_value_iface().set_current_value(2)
A.click(A.find("Apply CPUs and memory", "push button", root=props))
A.ok(A.wait_for(lambda: "cores = 2" in open(conf).read(), 30, "cores = 2"), "Apply writes the CPUs into vm.conf",
     open(conf).read())
A.select_tab(A.find("Snapshots", "page tab", root=props))
A.set_text(A.wait_for(lambda: A.find("Snapshot name", "text", root=props), 10, "the field"), "s1")
A.click(A.find("Take snapshot", "push button", root=props))
A.ok(A.wait_for(lambda: A.find("Delete snapshot s1", "push button", root=props), 30, "the snapshot row"),
     "Take snapshot: the snapshot is listed")
A.select_tab(A.find("Clone, Export, Delete", "page tab", root=props))
A.set_text(A.wait_for(lambda: A.find("Clone name", "text", root=props), 10, "the field"), "bad-copy")
A.click(A.find("Clone", "push button", root=props))
perr = A.wait_for(lambda: A.find("Error", "label", root=props), 30, "the dialog's error")
cli = A.phyllo("clone", "bad", "bad-copy", check=False)
A.is_(A.text_of(perr) if perr else None, cli.stderr.strip()[len("phyllo: "):],
      "a refused clone shows in the dialog the sentence phyllo prints")
A.shot("properties-error")
A.select_tab(A.find("Snapshots", "page tab", root=props))
A.click(A.find("Delete snapshot s1", "push button", root=props))
A.ok(A.wait_for(lambda: not A.find("Delete snapshot s1", "push button", root=props), 30, "the row to go"),
     "Delete snapshot: the row goes")
A.select_tab(A.find("Clone, Export, Delete", "page tab", root=props))
A.click(A.find("Clone", "push button", root=props))
A.ok(A.wait_for(lambda: A.find("Virtual machine bad-copy"), 30, "the clone's card"),
     "Clone: the clone's card appears")
A.click(A.find("Close", "push button", root=props))

# ---- This computer ----
A.click(A.find("This computer", "push button"))
v = A.wait_for(lambda: A.find("Verdict") and "tier" in A.text_of(A.find("Verdict")) and A.find("Verdict"), 60,
               "the verdict")
A.ok(v, "This computer shows the host check's verdict", A.text_of(A.find("Verdict")) if A.find("Verdict") else "")
checks = A.find("Host checks")
n = checks.get_child_count() if checks else 0
A.ok(n >= 5, "and its findings (%d rows)" % n)
A.no_unnamed(A.app_root(), "of This computer")
A.shot("host-check")
A.click(A.find("Back to the collection", "push button"))

# ---- phyllod goes away, and comes back ----
A.phyllod_stop(pd)
banner = A.wait_for(lambda: A.find("Service status", "label"), 30, "the banner")
A.ok(banner and "not running" in A.text_of(banner), "phyllod gone: a banner says so",
     A.text_of(banner) if banner else "")
A.no_unnamed(A.app_root(), "with the banner")
os.environ["PHYLLOME_NO_DAEMON"] = "1"
r = A.phyllo("create", "later", "--profile", "linux", "--kernel", bad, "--display", "none", "--memory", "128M",
             "--cpus", "1", "--no-uefi", "--no-disk")
del os.environ["PHYLLOME_NO_DAEMON"]
A.ok(r.returncode == 0, "a VM made meanwhile without phyllod", r.stderr)
pd = A.phyllod_start()
A.ok(A.wait_for(lambda: not A.find("Service status", "label") and A.find("Virtual machine later"), 60,
                "the banner to go"),
     "phyllod back: the banner goes and the window lists the VM made meanwhile (no restart of the app)")

# ---- the banner's button starts the per-user phyllod ----
A.phyllod_stop(pd)
A.ok(A.wait_for(lambda: A.find("Start phyllod", "push button"), 30, "the banner's button"), "the banner offers to start phyllod")
A.click(A.find("Start phyllod", "push button"))
A.ok(A.wait_for(lambda: not A.find("Service status", "label"), 60, "the banner to go"),
     "Start phyllod: the app starts it and follows it again")
spawned = A.own_by_home("phyllod")
A.is_(len(spawned), 1, "one phyllod serves the home, detached from the app (its parent is not the app)")
A.ok(all(A.ppid(p) != app.pid for p in spawned), "it outlives the window: not the app's child")

# ---- --host (Phyllome OS's desktop session, a user's first run): the window
# opens on This computer, loaded once phyllod answers ----
app.kill()
app.wait()
A.wait_for(lambda: not A.app_root(), 30, "the first window to go")
app = A.app_start("--host")
v = A.wait_for(lambda: A.find("Verdict") and "tier" in A.text_of(A.find("Verdict")) and A.find("Verdict"), 60,
               "the verdict")
A.ok(v, "--host: the window opens on This computer with the host check's verdict",
     A.text_of(A.find("Verdict")) if A.find("Verdict") else "")
A.ok(A.find("Back to the collection", "push button") is not None, "and the way back to the collection")
A.done()
