# The assistant's sources, through AT-SPI under Xvfb with a real phyllod:
# a libvirt domain made by virt-install --print-xml (the interop fixture)
# imported with its report shown and its card appearing; a local ISO whose
# OS phyllod detects (libosinfo: a Debian 12 volume id), the profile and the
# express install fields following it; a catalog OS whose download (a slow
# loopback server) shows progress and, cancelled, leaves no file and no
# child.  No guest boots.
import hashlib, os, shutil, subprocess, sys
import applib as A

A.setup()
home = A.home
guest = os.path.join(home, "guest")
here = os.path.dirname(os.path.abspath(__file__))
fixtures = os.path.join(here, "..", "fixtures", "interop", "libvirt")

# ---- fixtures: the libvirt XML, an ISO, a slow download ----
xml = os.path.join(guest, "lin.xml")
with open(os.path.join(fixtures, "virt-install-lin.xml")) as f:
    open(xml, "w").write(f.read().replace("@DIR@", guest))
subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", os.path.join(guest, "deb.qcow2"), "64M"], check=True)
have_iso = shutil.which("xorriso") is not None
iso = os.path.join(guest, "debian.iso")
if have_iso:
    tree = os.path.join(home, "isotree")
    os.makedirs(os.path.join(tree, "boot"))
    os.makedirs(os.path.join(tree, "install.amd"))
    open(os.path.join(tree, "boot", "boot.img"), "wb").write(b"\0" * 2048)
    # laid out as Debian's netinst: the installer's kernel and initrd where osinfo-db says
    shutil.copy(os.path.join(guest, "vmlinux"), os.path.join(tree, "install.amd", "vmlinuz"))
    shutil.copy(os.path.join(guest, "initrd.img"), os.path.join(tree, "install.amd", "initrd.gz"))
    # a bootable (El Torito) ISO with Debian 12's volume id, as libosinfo wants install media
    subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-V", "Debian 12.11.0 amd64 n", "-b", "boot/boot.img",
                    "-no-emul-boot", "-boot-load-size", "4", "-o", iso, tree], check=True, stderr=subprocess.DEVNULL)
    os.chmod(iso, 0o644)
www = os.path.join(home, "www")
os.mkdir(www)
big = os.urandom(24 << 20)
open(os.path.join(www, "slow-12.iso"), "wb").write(big)
srv = A.own(subprocess.Popen([sys.executable, os.path.join(here, "slowhttp.py"), www], stdout=subprocess.PIPE, text=True))
port = int(srv.stdout.readline())
catalog = os.path.join(home, "catalog.conf")
open(catalog, "w").write("""[os slowos]
osinfo = http://debian.org/debian/12
name = Slow Debian (loopback)
url = http://127.0.0.1:%d/slow-12.iso
signed = none
sha256 = %s
hash-source = http://127.0.0.1:%d/
""" % (port, hashlib.sha256(big).hexdigest(), port))
os.environ["PHYLLOME_CATALOG"] = catalog
os.environ["XDG_CACHE_HOME"] = os.path.join(home, "cache")
media = os.path.join(home, "cache", "phyllome", "media")

pd = A.phyllod_start()
A.atspi_init()
app = A.app_start()
A.ok(A.wait_for(lambda: A.find("Phyllome", "frame"), 60, "the window"), "the window opens") or A.bail("no window")


def open_assistant():
    A.click(A.find_wait("New virtual machine", "push button", 30))
    return A.wait_for(lambda: A.find("New Virtual Machine", "dialog"), 30, "the assistant")


def status():
    s = A.find("Assistant status", visible=False)
    return A.text_of(s) if s else ""


# ---- a libvirt domain ----
dlg = open_assistant()
A.ok(dlg is not None, "the assistant opens") or A.bail("no assistant")
A.click(A.find_wait("Import", "radio button", 10))
A.set_text(A.find_wait("Import file", "text", 10), xml)
A.no_unnamed(dlg, "of the assistant's Import page")
A.click(A.find("Create", "push button", root=dlg))
A.ok(A.wait_for(lambda: status().startswith("Imported as “lin”"), 60, "the import"),
     "Import: the assistant says the domain is imported, with its counts", status())
report = A.text_of(A.find("Import report", visible=False) or dlg)
A.ok("/domain/metadata" in report and "line 6" in report,
     "the import report lists the elements with their lines", report[:400])
A.ok(A.wait_for(lambda: A.find("Virtual machine lin"), 30, "the card"), "the imported VM's card appears")
A.ok(os.path.isfile(os.path.join(home, "vms", "lin", "vm.conf")), "phyllod wrote its definition")
A.shot("import", dlg)
A.click(A.find("Close", "push button", root=dlg))
A.ok(A.wait_for(lambda: not A.find("New Virtual Machine", "dialog"), 20, "the assistant to close"),
     "Close ends the assistant")

# ---- a quickemu VM, an OVA (and one whose manifest does not match) ----
qe = os.path.join(home, "qe")
os.makedirs(os.path.join(qe, "debian-12"))
subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", os.path.join(qe, "debian-12", "disk.qcow2"), "1G"], check=True)
shutil.copy(os.path.join(here, "..", "fixtures", "interop", "quickemu.conf"), os.path.join(qe, "debian-12.conf"))
ova_dir = os.path.join(home, "ova")
os.mkdir(ova_dir)
raw = os.path.join(ova_dir, "boot.img")
open(raw, "wb").truncate(4 << 20)
vmdk = os.path.join(ova_dir, "tiny-disk001.vmdk")
subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, vmdk], check=True)
with open(os.path.join(here, "..", "fixtures", "interop", "virtualbox.ovf")) as f:
    open(os.path.join(ova_dir, "tiny.ovf"), "w").write(f.read().replace("@CAPACITY@", str(4 << 20)))


def make_ova(out, disk_bytes):
    import tarfile
    sha = lambda b: hashlib.sha256(b).hexdigest()
    ovf = open(os.path.join(ova_dir, "tiny.ovf"), "rb").read()
    disk = open(vmdk, "rb").read()
    mf = ("SHA256 (tiny.ovf) = %s\nSHA256 (tiny-disk001.vmdk) = %s\n" % (sha(ovf), sha(disk))).encode()
    import io
    with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in (("tiny.ovf", ovf), ("tiny.mf", mf), ("tiny-disk001.vmdk", disk_bytes(disk))):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    os.chmod(out, 0o644)


good_ova, bad_ova = os.path.join(home, "tiny.ova"), os.path.join(home, "bad.ova")
make_ova(good_ova, lambda d: d)
make_ova(bad_ova, lambda d: d[:70000] + b"X" + d[70001:])


def import_file(kind_index, path, name=""):
    dlg = open_assistant()
    A.click(A.find_wait("Import", "radio button", 10))
    A.find_wait("Import kind", "combo box", 10).get_selection_iface().select_child(kind_index)
    A.set_text(A.find_wait("Import file", "text", 10), path)
    A.set_text(A.find("Name", "text", root=dlg), name)
    A.click(A.find("Create", "push button", root=dlg))

    def ended():
        st = status()
        if st.startswith("Imported as"):
            return True
        b = A.find("Create", "push button", root=dlg)
        return b is not None and b.get_state_set().contains(A.Atspi.StateType.SENSITIVE) and st not in ("", "Importing…")
    A.wait_for(ended, 90, "the import's end")
    return dlg


dlg = import_file(1, os.path.join(qe, "debian-12.conf"))
A.ok(status().startswith("Imported as “debian-12”"), "quickemu: the .conf imports", status())
A.ok(A.wait_for(lambda: A.find("Virtual machine debian-12"), 30, "the card"), "its card appears")
A.click(A.find("Close", "push button", root=dlg))
A.wait_for(lambda: not A.find("New Virtual Machine", "dialog"), 20, "the assistant to close")

dlg = import_file(2, bad_ova, "bad")
cli = A.phyllo("import-ova", bad_ova, "--name", "bad", check=False)
A.ok(cli.returncode != 0, "phyllo refuses the OVA whose disk does not match its manifest", cli.stderr)
A.is_(status(), cli.stderr.strip()[len("phyllo: "):], "the assistant shows the sentence phyllo prints")
A.ok(not os.path.exists(os.path.join(home, "vms", "bad")), "and nothing is left of it")
A.click(A.find("Cancel", "push button", root=dlg))
A.wait_for(lambda: not A.find("New Virtual Machine", "dialog"), 20, "the assistant to close")

dlg = import_file(2, good_ova)
A.ok(status().startswith("Imported as “tiny”"), "OVA: VirtualBox's shape imports", status())
report = A.text_of(A.find("Import report", visible=False) or dlg)
A.ok("e1000e" in report and "(the guest notices)" in report,
     "the report says what the guest notices (the NIC model changes)", report[:600])
A.ok(A.wait_for(lambda: A.find("Virtual machine tiny"), 30, "the card"), "its card appears")
A.shot("import-ova", dlg)
A.click(A.find("Close", "push button", root=dlg))
A.wait_for(lambda: not A.find("New Virtual Machine", "dialog"), 20, "the assistant to close")

# ---- a local ISO ----
dlg = open_assistant()
if have_iso:
    A.click(A.find_wait("ISO Image", "radio button", 10))
    A.set_text(A.find_wait("ISO image", "text", 10), iso)
    det = lambda: A.text_of(A.find("Detected operating system", visible=False) or dlg)
    A.ok(A.wait_for(lambda: "Debian 12" in det(), 60, "the detection"),
         "ISO: phyllod detects Debian 12 on the media", det())
    A.ok("profile linux" in det(), "and says the profile it defaults to", det())
    mem = A.find("Memory in MiB", "spin button", root=dlg).get_value_iface().get_current_value()
    A.is_(mem, 2048.0, "the memory follows osinfo's recommended tier (2 GiB)")
    ex = A.wait_for(lambda: A.find("Express installation", "check box", root=dlg), 10, "the express fields")
    A.ok(ex is not None, "the express installation fields show for an OS the catalog can answer")
    A.no_unnamed(dlg, "of the ISO page")
    A.shot("assistant-iso", dlg)
    A.set_text(A.find("Name", "text", root=dlg), "from-iso")
    A.find("Disk size in GiB", "spin button", root=dlg).get_value_iface().set_current_value(1)
    secret = "not-a-real-secret-app"
    A.click(ex)
    A.wait_for(lambda: ex.get_state_set().contains(A.Atspi.StateType.CHECKED), 10, "the check")
    A.set_text(A.find("Express user", "text", root=dlg), "alice")
    A.set_text(A.find("Express password", "password text", root=dlg), secret)
    A.set_text(A.find("Express host name", "text", root=dlg), "debvm")
    A.click(A.find("Create", "push button", root=dlg))
    A.ok(A.wait_for(lambda: A.find("Virtual machine from-iso"), 90, "the card"),
         "Create with the express installation: the ISO's VM appears", status())
    conf = open(os.path.join(home, "vms", "from-iso", "vm.conf")).read() if os.path.exists(
        os.path.join(home, "vms", "from-iso", "vm.conf")) else ""
    A.ok("profile = linux" in conf, "with the detected profile", conf)
    A.ok("[install]" in conf and "answer = preseed.cfg" in conf and iso in conf,
         "and a one-shot install from the ISO with osinfo's preseed (phyllod made the answer file)", conf)
    vmdir = os.path.join(home, "vms", "from-iso")
    leaks = [f for f in os.listdir(vmdir) if os.path.isfile(os.path.join(vmdir, f)) and
             secret.encode() in open(os.path.join(vmdir, f), "rb").read()]
    A.is_(leaks, [], "the password is in clear in no file of the VM (the preseed has its hash)")
    A.ok(A.wait_for(lambda: not A.find("New Virtual Machine", "dialog"), 30, "the assistant to close"),
         "the assistant closes once the VM is made")
    # phyllod started the install run (the test guest, not an installer): stopped here
    A.phyllo("kill", "from-iso", check=False)
    dlg = open_assistant()
else:
    A.diag("xorriso is not installed: the ISO part is skipped")

# ---- a download, cancelled ----
A.click(A.find_wait("Catalog", "radio button", 10))
A.wait_for(lambda: "recommended" in A.text_of(A.find("Resource tiers", visible=False) or dlg), 30, "the tiers")
A.set_text(A.find("Name", "text", root=dlg), "dl")
A.click(A.find("Create", "push button", root=dlg))
A.ok(A.wait_for(lambda: status().startswith("Downloading:"), 60, "the download's progress"),
     "Catalog: the download's progress shows (phyllod's events)", status())
bar = A.find("Progress", "progress bar", root=dlg)
A.wait_for(lambda: bar.get_value_iface().get_current_value() > 0.05, 30, "the bar to move")
A.ok(bar.get_value_iface().get_current_value() > 0, "the progress bar moves",
     bar.get_value_iface().get_current_value())
A.shot("download", dlg)
parts = [f for f in os.listdir(media) if f.endswith(".part")]
A.ok(parts, "a partial file is being written", os.listdir(media))
A.click(A.find("Cancel", "push button", root=dlg))
A.ok(A.wait_for(lambda: "cancelled" in status(), 30, "the cancellation"), "Cancel: the assistant says it is cancelled",
     status())
A.is_(sorted(f for f in os.listdir(media) if not f.startswith(".")), [], "the cancelled download leaves no file")
kids = subprocess.run(["pgrep", "-P", str(pd.pid)], capture_output=True, text=True).stdout.split()
A.is_(kids, [], "and no child of phyllod runs")
A.ok(not os.path.exists(os.path.join(home, "vms", "dl")), "and no VM was made")
A.click(A.find("Cancel", "push button", root=dlg))
A.ok(A.wait_for(lambda: not A.find("New Virtual Machine", "dialog"), 20, "the assistant to close"),
     "Cancel again closes the assistant")

# ---- properties: firmware and TPM, PCI devices, export ----
A.click(A.find_wait("Properties of lin", "push button", 10))
props = A.wait_for(lambda: A.find("Properties of lin", "dialog"), 30, "the properties")
A.ok(props is not None, "Properties of the imported VM open") or A.bail("no properties")
conf = os.path.join(home, "vms", "lin", "vm.conf")
A.select_tab(A.find("Firmware and TPM", "page tab", root=props))
fw = A.wait_for(lambda: A.find("Firmware", "combo box", root=props), 10, "the firmware")
A.wait_for(lambda: "name = lin" in A.text_of(A.find("Effective definition", visible=False, root=props)), 30,
           "the definition")
A.ok(A.find("Secure Boot", "check box", root=props) and A.find("TPM", "combo box", root=props),
     "the page has Firmware, Secure Boot and TPM")
A.no_unnamed(props, "of Firmware and TPM")
tpm_fail = None
A.click(A.find("Secure Boot", "check box", root=props))
A.click(A.find("Apply firmware and TPM", "push button", root=props))
err = A.wait_for(lambda: A.find("Error", "label", root=props), 30, "the refusal")
A.ok(err and "secure" in A.text_of(err).lower(), "Secure Boot with BIOS firmware: the dialog shows phyllod's refusal",
     A.text_of(err) if err else "")
A.ok("secure-boot = on" not in open(conf).read(), "and vm.conf is unchanged")
A.click(A.find("Close the message", "push button", root=props))
# UEFI: the combo's menu items are actions of the combo box's children
fw.get_selection_iface().select_child(0)
# the refusal reloaded the page from the definition: Secure Boot is off again
sb = A.find("Secure Boot", "check box", root=props)
A.wait_for(lambda: not sb.get_state_set().contains(A.Atspi.StateType.CHECKED), 10, "the reload")
A.click(sb)
A.wait_for(lambda: sb.get_state_set().contains(A.Atspi.StateType.CHECKED), 10, "the check")
A.click(A.find("Apply firmware and TPM", "push button", root=props))
A.ok(A.wait_for(lambda: "secure-boot = on" in open(conf).read() and "type = uefi" in open(conf).read(), 30,
                "the firmware in vm.conf"), "UEFI with Secure Boot: Apply writes them into vm.conf", open(conf).read())
A.ok("smm = on" in open(conf).read(), "with SMM on (Secure Boot needs it)")
A.shot("properties-firmware", props)

A.select_tab(A.find("PCI Devices", "page tab", root=props))
rows = A.wait_for(lambda: [a for a in A.walk(A.find("Host PCI devices", visible=False, root=props))
                           if (a.get_name() or "").startswith("PCI device ")], 30, "the host's devices")
verdicts = [A.text_of(r) for r in rows or []]
A.ok(verdicts and all("IOMMU" in v for v in verdicts), "each host PCI device shows its IOMMU verdict",
     "\n".join(verdicts[:3]))
passes = [a for a in A.walk(props) if (a.get_name() or "").startswith("Pass through ")]
assignable = [v for v in verdicts if "can be given to a VM" in v and "cannot" not in v]
A.is_(len(passes), len(assignable), "Pass Through is offered exactly where the verdict says it is safe")
A.no_unnamed(props, "of PCI Devices")
A.shot("properties-devices", props)

A.select_tab(A.find("Clone, Export, Delete", "page tab", root=props))
exp = os.path.join(home, "exported")
A.set_text(A.wait_for(lambda: A.find("libvirt export folder", "text", root=props), 10, "the field"), exp)
A.click(A.find("Export for libvirt", "push button", root=props))
res = lambda: A.text_of(A.find("Export result", visible=False, root=props))
A.ok(A.wait_for(lambda: "Exported for libvirt" in res(), 60, "the export"), "Export for libvirt: done", res())
A.ok(any(f.endswith(".xml") for f in os.listdir(exp)) if os.path.isdir(exp) else False,
     "the domain XML is in the folder", os.listdir(exp) if os.path.isdir(exp) else "")
bundle = os.path.join(home, "lin.phyllome")
A.set_text(A.find("Bundle file", "text", root=props), bundle)
A.click(A.find("Export bundle", "push button", root=props))
A.ok(A.wait_for(lambda: ("Exported: " + bundle) in res(), 60, "the bundle"), "Export bundle: done", res())
A.ok(os.path.getsize(bundle) > 0 and not os.path.exists(bundle + ".partial"),
     "the bundle is written whole, no .partial left")
A.shot("properties-export", props)
r = A.phyllo("import", bundle, "--name", "lin-again")
A.ok(r.returncode == 0, "phyllo imports the bundle the app exported", r.stderr)
A.click(A.find("Export bundle", "push button", root=props))
err = A.wait_for(lambda: A.find("Error", "label", root=props), 30, "the refusal")
A.ok(err and "exists already" in A.text_of(err), "exporting over an existing file is refused, in the dialog",
     A.text_of(err) if err else "")
A.click(A.find("Close", "push button", root=props))
A.wait_for(lambda: not A.find("Properties of lin", "dialog"), 20, "the properties to close")

# ---- the bundle the app exported, imported through the assistant ----
dlg = import_file(3, bundle, "lin-b")
A.ok(status().startswith("Imported as “lin-b”"), "a Phyllome bundle imports through the assistant", status())
A.ok(A.wait_for(lambda: A.find("Virtual machine lin-b"), 30, "the card"), "its card appears")
A.click(A.find("Close", "push button", root=dlg))
A.done()
