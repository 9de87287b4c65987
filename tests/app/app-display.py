# The app from an empty home to a running, visible VM and back, driven
# through AT-SPI under Xvfb with a real phyllod and QEMU (TCG): create the
# tiny test guest in the assistant, start it from its card, see the colour
# bands the guest paints on its framebuffer (phyllome.fbpattern) in the
# card's live thumbnail and where the display widget is, type into the guest
# through the display, shut it down and see the card say Stopped.  One boot.
import os
import applib as A

A.setup()
if os.environ.get("PHYLLOME_SCREENSHOTS"):
    # scripts/screenshots: a collection with more than the test's VM.
    for name, prof, disk in (("windows11", "windows11", "64G"), ("fedora-workstation", "linux", "20G"),
                             ("freebsd14", "freebsd", "20G")):
        A.phyllo("create", name, "--profile", prof, "--disk", disk, "--cpus", "2", "--memory", "4G")
A.phyllod_start()
A.atspi_init()
app = A.app_start()
home = A.home
guest = os.path.join(home, "guest")

frame = A.wait_for(lambda: A.find("Phyllome", "frame"), 60, "the window")
A.ok(frame is not None, "the window opens") or A.bail("no window")
if not os.environ.get("PHYLLOME_SCREENSHOTS"):
    create = A.find_wait("Create a virtual machine", "push button", 30)
    A.ok(create is not None, "an empty home shows 'New Virtual Machine'")
    A.no_unnamed(A.app_root(), "of the empty collection")

# ---- the assistant ----
A.click(A.find("New virtual machine", "push button"))
dlg = A.wait_for(lambda: A.find("New Virtual Machine", "dialog"), 30, "the assistant")
A.ok(dlg is not None, "the assistant opens")
kernel_tab = A.find_wait("Linux Kernel", None, 10)
A.click(kernel_tab)
k = A.find_wait("Kernel", "text", 10)
A.ok(k is not None, "the Linux kernel source has a Kernel field")
A.set_text(k, os.path.join(guest, "vmlinux"))
A.set_text(A.find("Initrd", "text"), os.path.join(guest, "initrd.img"))
A.set_text(A.find("Kernel command line", "text"),
           "console=ttyS0 phyllome.gpu phyllome.fbpattern vt.global_cursor_default=0")
A.set_text(A.find("Name", "text"), "desk")
prof = A.wait_for(lambda: A.find("Profile", "combo box") and
                  (A.find("CPUs", "spin button").get_value_iface().get_current_value() > 0), 30,
                  "the profile's defaults")
A.ok(prof, "the profile's defaults fill the resources")
A.find("CPUs", "spin button").get_value_iface().set_current_value(1)
A.find("Memory in MiB", "spin button").get_value_iface().set_current_value(256)
A.find("Disk size in GiB", "spin button").get_value_iface().set_current_value(0)
A.no_unnamed(dlg, "of the assistant")
A.shot("assistant")
A.click(A.find("Create", "push button"))
card = A.wait_for(lambda: A.find("Virtual machine desk"), 60, "the new VM's card")
A.ok(card is not None, "the assistant creates the VM and its card appears") or \
    A.diag(A.text_of(A.find("Assistant status", visible=False)) if A.find("Assistant status", visible=False) else "")
conf = open(os.path.join(home, "vms", "desk", "vm.conf")).read() if card else ""
A.ok("vmlinux" in conf and "phyllome.fbpattern" in conf, "the definition has the kernel and its command line", conf)
# No sound server here: QEMU's user gets none (sound-none.sh); no TPM for a vmlinux boot.
with open(os.path.join(home, "vms", "desk", "vm.conf"), "a") as f:
    f.write("\n[sound]\ntype = none\n")

state = lambda vm: A.text_of(A.find("State of " + vm)) if A.find("State of " + vm) else None
A.is_(state("desk"), "Stopped", "the card says Stopped")

# ---- start from the card ----
A.click(A.find("Start desk", "push button"))
A.ok(A.wait_for(lambda: state("desk") == "Running", 120, "Running"), "Start on the card: the card says Running (an event)")
fb = A.wait_log("desk", r"PHYLLOME-GUEST-(FB|WARN)", 180)
A.ok(fb and "PHYLLOME-GUEST-FB" in fb, "the guest painted its framebuffer", fb)


def bands(region):
    c = A.colour_centroids(A.screenshot(None, region))
    n = sum(v[0] for v in c.values())
    if min(v[0] for v in c.values()) > n / 6 and c["red"][1] < c["green"][1] < c["blue"][1]:
        return c
    return None


# The live thumbnail (refreshed while the collection shows and the VM runs).
thumb = A.find("Screen of desk")
t = A.wait_for(lambda: bands(A.extents(thumb)), 60, "the bands in the thumbnail")
A.ok(t, "the card's thumbnail shows the guest's red, green and blue bands (QMP screendump through phyllod)")
A.shot("collection")

# ---- the VM view ----
A.click(A.find("Open desk", "push button"))
disp = A.wait_for(lambda: A.find("Display of desk"), 60, "the display widget")
A.ok(disp is not None, "the view embeds the SPICE display")
region = A.extents(disp) if disp else (0, 0, 1, 1)
c = A.wait_for(lambda: bands(region), 60, "the bands in the display")
A.ok(c, "the display widget shows red, green and blue bands from top to bottom", str(A.colour_centroids(A.screenshot(None, region))))
A.no_unnamed(A.app_root(), "of the VM view")
A.shot("running-vm")

# The guest reads tty1 only once its init got there after painting the
# bands: keys typed before that are lost (a VT nobody has open drops them),
# so the line is typed again, up to four times; each retry first erases
# what part of the last try did arrive (BackSpace: the tty's erase, harmless
# on an empty line).
typed = None
for attempt in range(4):
    A.focus(disp)
    for _ in range(20 if attempt else 0):
        A.key(sym=0xff08)
    A.type_text("phyllome-typed-ok")
    typed = A.wait_log("desk", r"PHYLLOME-GUEST-TYPED \S*", 15)
    if typed:
        break
A.is_(typed, "PHYLLOME-GUEST-TYPED phyllome-typed-ok", "keys typed in the display arrive in the guest")

# ---- the serial console beside the display ----
A.click(A.find("Show the serial console", "toggle button"))
term = A.wait_for(lambda: A.find("Serial console", "terminal"), 30, "the terminal")
A.ok(term is not None, "the serial console shows (VTE over the console Upgrade)")
if term:
    A.focus(term)
    A.type_text("echo con''sole-ok")
    A.ok(A.wait_for(lambda: "console-ok" in A.text_of(term).replace("con''sole", ""), 30, "the echo"),
         "a line typed in the console reaches the guest's shell and its output shows")
    A.click(A.find("Show the serial console", "toggle button"))
    A.ok(A.wait_for(lambda: A.find("Display of desk"), 30, "the display again"), "and the display comes back")

# ---- properties ----
A.click(A.find("Properties", "push button"))
props = A.wait_for(lambda: A.find("Properties of desk", "dialog"), 30, "the properties")
A.ok(props is not None, "Properties opens")
if props:
    A.wait_for(lambda: "desk" in A.text_of(A.find("Effective definition", visible=False) or props), 30, "the definition")
    A.no_unnamed(props, "of the properties")
    A.shot("properties")
    A.click(A.find("Close", "push button", root=props) or A.find("Close", "push button"))

# ---- stop from the view; the card says Stopped ----
A.click(A.find("Shut down", "push button"))
A.ok(A.wait_for(lambda: A.find("desk is stopped"), 120, "the stopped page"), "Shut down: the view says the VM stopped")
A.click(A.find("Back to the collection", "push button"))
A.is_(A.wait_for(lambda: state("desk") == "Stopped" and "Stopped", 30, "Stopped"), "Stopped",
      "back in the collection, the card says Stopped")
A.done()
