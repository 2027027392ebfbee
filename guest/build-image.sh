#!/usr/bin/env bash
# Builds Corral's test guest images from Debian packages, without loop devices or mounts:
#   corral-linux-test.qcow2     cloud kernel, virtio disk/NIC, Debian's QEMU guest agent on virtio-serial ("optimized")
#   corral-linux-notools.qcow2  generic kernel, IDE disk and e1000 NIC only, no agent ("tools not installed")
# Each boots under BIOS and UEFI firmware alike, with Secure Boot on or off: MBR, a FAT boot partition with syslinux for
# BIOS and, for UEFI, Debian's signed shim and GRUB (shim-signed, grub-efi-amd64-signed) before Debian's signed kernel,
# a busybox initramfs, and an ext4 data partition. Output in $CORRAL_GUEST_DIR (default guest/build). Skips work already done.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${CORRAL_GUEST_DIR:-$here/build}
work="$out/work"
mkdir -p "$out" "$work"

log() { printf '[guest] %s\n' "$*" >&2; }

need=()
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v depmod >/dev/null || need+=(kmod)
for pair in xorriso:xorriso isolinux:/usr/lib/ISOLINUX/isolinux.bin qemu-guest-agent:/usr/sbin/qemu-ga syslinux:syslinux syslinux-common:/usr/lib/syslinux/mbr/mbr.bin mtools:mcopy dosfstools:mkfs.vfat e2fsprogs:mke2fs fdisk:sfdisk qemu-utils:qemu-img cpio:cpio ioping:ioping; do
  pkg=${pair%%:*}; probe=${pair#*:}
  if [[ $probe == /* ]]; then [ -e "$probe" ] || need+=("$pkg"); else command -v "$probe" >/dev/null || need+=("$pkg"); fi
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The kernel packages' exact versions, as Debian's meta-packages resolve them today.
kernel_package() { apt-cache depends "$1" 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}'; }

fetch_kernel() { # fetch_kernel META -> prints the extracted tree
  local meta=$1 pkg tree
  pkg=$(kernel_package "$meta")
  [ -n "$pkg" ] || { apt-get update -qq; pkg=$(kernel_package "$meta"); }
  [ -n "$pkg" ] || { echo "cannot resolve $meta" >&2; exit 1; }
  tree="$work/$pkg"
  if [ ! -f "$tree/.extracted" ]; then
    log "fetching $pkg"
    rm -rf "$tree"; mkdir -p "$tree"
    (cd "$work" && apt-get download -qq -o APT::Sandbox::User=root "$pkg" >/dev/null)
    dpkg-deb -x "$work/${pkg}"_*.deb "$tree"
    rm -f "$work/${pkg}"_*.deb
    # The package leaves modules.dep to depmod at install time; make it for the extracted tree.
    depmod -b "$tree" "$(ls "$tree/lib/modules")"
    touch "$tree/.extracted"
  fi
  echo "$tree"
}

# Debian's signed UEFI boot chain, as a Debian system boots with Secure Boot on: shim (signed by Microsoft's UEFI CA,
# which firmware with Microsoft's keys enrolled trusts), then GRUB and the kernel (signed by Debian, which shim trusts).
fetch_secure_boot() { # prints the extracted tree, with usr/lib/shim/shimx64.efi.signed and usr/lib/grub/x86_64-efi-signed/
  local tree="$work/secure-boot" pkg
  if [ ! -f "$tree/.extracted" ]; then
    rm -rf "$tree"; mkdir -p "$tree"
    for pkg in shim-signed grub-efi-amd64-signed; do
      log "fetching $pkg"
      (cd "$work" && apt-get download -qq -o APT::Sandbox::User=root "$pkg" >/dev/null) || { apt-get update -qq; (cd "$work" && apt-get download -qq -o APT::Sandbox::User=root "$pkg" >/dev/null); }
      dpkg-deb -x "$work/${pkg}"_*.deb "$tree"
      rm -f "$work/${pkg}"_*.deb
    done
    touch "$tree/.extracted"
  fi
  echo "$tree"
}

# GRUB's menu for the images' system: the kernel and initramfs at the root of the boot partition.
system_grub_cfg() {
  printf 'set timeout=0\nset default=0\nmenuentry corral {\n  linux /vmlinuz console=tty0 console=ttyS0,115200 quiet loglevel=3 rdinit=/init\n  initrd /initrd\n}\n'
}

# Orders modules so each comes after what it depends on (virtio_ring before virtio, ...), from modules.dep.
module_order() { # module_order TREE RELEASE NAME...
  local tree=$1 release=$2; shift 2
  local dep="$tree/lib/modules/$release/modules.dep"
  declare -A seen=()
  visit() {
    local path=$1 d
    [ -n "${seen[$path]:-}" ] && return
    seen[$path]=1
    for d in $(grep -m1 "^$path:" "$dep" | cut -d: -f2); do visit "$d"; done
    echo "$path"
  }
  for name in "$@"; do
    local path
    path=$(grep -oE "^[^:]*/$name\.ko(\.xz)?:" "$dep" | head -n 1 | tr -d :)
    [ -n "$path" ] || { echo "module $name not in $release" >&2; exit 1; }
    visit "$path"
  done
}

# Debian's QEMU guest agent (qemu-guest-agent), with the shared libraries it loads, as a distribution installs it: the
# guest tools every KVM platform talks to. It shuts the guest down through /sbin/shutdown, which busybox lacks: a
# small script maps it to the image's poweroff. Its guest-get-osinfo reads /etc/os-release.
install_qemu_ga() { # install_qemu_ga ROOT
  local root=$1 lib
  mkdir -p "$root/sbin" "$root/lib64" "$root/lib/x86_64-linux-gnu" "$root/etc/qemu"
  install -m 755 /usr/sbin/qemu-ga "$root/sbin/qemu-ga"
  for lib in $(ldd /usr/sbin/qemu-ga | awk '/=> \//{print $3} /^[ \t]*\/lib64\//{print $1}'); do
    case "$lib" in
      /lib64/*) cp -L "$lib" "$root/lib64/" ;;
      *) cp -L "$lib" "$root/lib/x86_64-linux-gnu/" ;;
    esac
  done
  install -m 755 "$here/rootfs/shutdown" "$root/sbin/shutdown"
  cat > "$root/etc/os-release" <<'OS'
PRETTY_NAME="Corral Linux test 1.0"
NAME="Corral Linux test"
VERSION_ID="1.0"
VERSION="1.0"
ID=corral-linux-test
ID_LIKE=debian
OS
}

# The system's initramfs: busybox, the test guest's init and helpers, optionally the guest agents, the modules given.
make_system_initrd() { # make_system_initrd NAME TREE RELEASE AGENT(yes|no) MODULES... -> $work/NAME.initrd
  local name=$1 tree=$2 release=$3 agent=$4; shift 4
  local root="$work/$name-root"
  rm -rf "$root"; mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,run,tmp,data,lib/modules,var/run,root}
  for applet in $(/bin/busybox --list); do [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"; done
  cp /bin/busybox "$root/bin/busybox"
  install -m 755 "$here/rootfs/init" "$root/init"
  install -m 755 "$here/rootfs/corral-poweroff" "$root/bin/corral-poweroff"
  install -m 755 "$here/rootfs/seqwriter" "$root/bin/seqwriter"
  install -m 755 "$here/rootfs/power-button" "$root/bin/power-button"
  # Debian's ioping (libc alone): a disk's sequential and random I/O measured from inside the guest (bench/sr-io.sh).
  copy_with_libs "$root" "$(command -v ioping)"
  if [ "$agent" = yes ]; then
    install_qemu_ga "$root"
  fi
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
  printf 'PS1="corral-guest:\\w# "\nexport PS1\n' > "$root/etc/profile"
  add_modules "$root" "$tree" "$release" "$@"
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) > "$work/$name.initrd"
}

add_modules() { # add_modules ROOT TREE RELEASE MODULES...: the modules and their dependencies, in load order (etc/modules.order)
  local root=$1 tree=$2 release=$3; shift 3
  mkdir -p "$root/lib/modules" "$root/etc"
  : > "$root/etc/modules.order"
  local module modules
  modules=$(module_order "$tree" "$release" "$@") || exit 1
  for module in $modules; do
    cp "$tree/lib/modules/$release/$module" "$root/lib/modules/$(basename "$module")"
    basename "$module" >> "$root/etc/modules.order"
  done
}

system_syslinux_cfg() {
  cat <<CFG
DEFAULT corral
PROMPT 0
TIMEOUT 0
LABEL corral
  KERNEL /vmlinuz
  INITRD /initrd
  APPEND console=tty0 console=ttyS0,115200 quiet loglevel=3 rdinit=/init
CFG
}

build_image() { # build_image NAME META AGENT(yes|no) MODULES...
  local name=$1 meta=$2 agent=$3; shift 3
  local target="$out/$name.qcow2" stamp="$out/$name.stamp"
  local inputs; inputs=$(cat "$here/build-image.sh" "$here"/rootfs/* | sha256sum | cut -c1-16)
  local tree; tree=$(fetch_kernel "$meta")
  local release; release=$(ls "$tree/lib/modules")
  if [ -f "$target" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$inputs-$release" ]; then
    log "$name is up to date ($release)"; return
  fi
  log "building $name ($release)"
  make_system_initrd "$name" "$tree" "$release" "$agent" "$@"

  # Disk: 1 MiB gap, 48 MiB FAT16 boot partition (active), the rest ext4 data.
  local raw="$work/$name.raw"
  rm -f "$raw"; truncate -s 112M "$raw"
  printf 'label: dos\nstart=2048, size=98304, type=6, bootable\nstart=100352, type=83\n' | sfdisk -q "$raw"
  dd if=/usr/lib/syslinux/mbr/mbr.bin of="$raw" bs=440 count=1 conv=notrunc status=none
  mkfs.vfat -F 16 -n CORRALBOOT --offset 2048 "$raw" $((98304 / 2)) >/dev/null
  local fat="$raw@@$((2048 * 512))"
  system_syslinux_cfg > "$work/syslinux.cfg"
  MTOOLS_SKIP_CHECK=1 mcopy -i "$fat" "$tree/boot/vmlinuz-$release" ::vmlinuz
  MTOOLS_SKIP_CHECK=1 mcopy -i "$fat" "$work/$name.initrd" ::initrd
  MTOOLS_SKIP_CHECK=1 mcopy -i "$fat" "$work/syslinux.cfg" ::syslinux.cfg
  # UEFI firmware boots the same partition: shim where firmware looks for a removable disk's loader, GRUB beside it
  # (shim starts grubx64.efi from its own directory), GRUB's menu where the signed GRUB looks (its prefix, /EFI/debian,
  # then its own directory).
  local sb; sb=$(fetch_secure_boot)
  system_grub_cfg > "$work/grub.cfg"
  MTOOLS_SKIP_CHECK=1 mmd -i "$fat" ::EFI ::EFI/BOOT ::EFI/debian
  MTOOLS_SKIP_CHECK=1 mcopy -i "$fat" "$sb/usr/lib/shim/shimx64.efi.signed" ::EFI/BOOT/BOOTX64.EFI
  MTOOLS_SKIP_CHECK=1 mcopy -i "$fat" "$sb/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed" ::EFI/BOOT/grubx64.efi
  MTOOLS_SKIP_CHECK=1 mcopy -i "$fat" "$work/grub.cfg" ::EFI/BOOT/grub.cfg
  MTOOLS_SKIP_CHECK=1 mcopy -i "$fat" "$work/grub.cfg" ::EFI/debian/grub.cfg
  syslinux --offset $((2048 * 512)) --install "$raw"
  local data="$work/$name-data"; rm -rf "$data"; mkdir -p "$data"; echo 0 > "$data/boot-count"
  local data_img="$work/$name-data.img"; rm -f "$data_img"
  mke2fs -q -t ext4 -L corraldata -d "$data" "$data_img" $(( (112 * 1024 * 1024 - 100352 * 512) / 1024 ))k
  dd if="$data_img" of="$raw" bs=512 seek=100352 conv=notrunc status=none
  qemu-img convert -f raw -O qcow2 "$raw" "$target.partial"
  mv "$target.partial" "$target"
  rm -f "$raw" "$data_img"
  echo "$inputs-$release" > "$stamp"
  log "built $target"
}

copy_with_libs() { # copy_with_libs ROOT BINARY: the binary at the same path under ROOT, with the shared libraries it loads
  local root=$1 bin=$2 lib
  install -D -m 755 "$bin" "$root$bin"
  for lib in $(ldd "$bin" | awk '/=> \//{print $3} /^[ \t]*\/lib64\//{print $1}'); do
    case "$lib" in
      /lib64/*) install -D -m 755 "$(readlink -f "$lib")" "$root$lib" ;;
      *) install -D -m 644 "$(readlink -f "$lib")" "$root/lib/x86_64-linux-gnu/$(basename "$lib")" ;;
    esac
  done
}

# The installer ISO: boots (BIOS through isolinux, UEFI through shim and GRUB, Secure Boot on or off) into an initramfs that partitions
# the VM's disk and installs a small system (the generic kernel with virtio and IDE drivers, Debian's QEMU guest agent)
# that then boots from that disk under either firmware. Built from Debian packages like the images.
build_installer_iso() {
  local target="$out/corral-installer.iso" stamp="$out/corral-installer.stamp"
  local inputs; inputs=$(cat "$here/build-image.sh" "$here"/rootfs/* "$here"/installer/* | sha256sum | cut -c1-16)
  local tree; tree=$(fetch_kernel linux-image-amd64)
  local release; release=$(ls "$tree/lib/modules")
  if [ -f "$target" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$inputs-$release" ]; then
    log "corral-installer.iso is up to date ($release)"; return
  fi
  log "building corral-installer.iso ($release)"
  local drivers=(virtio_pci virtio_blk virtio_net virtio_console virtio_balloon ata_piix sd_mod e1000 crc32c_generic ext4 qemu_fw_cfg button evdev)
  make_system_initrd corral-linux-installed "$tree" "$release" yes "${drivers[@]}"

  local root="$work/installer-root"
  rm -rf "$root"; mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,run,tmp,payload}
  for applet in $(/bin/busybox --list); do [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"; done
  cp /bin/busybox "$root/bin/busybox"
  install -m 755 "$here/installer/init" "$root/init"
  for tool in /sbin/sfdisk /sbin/mkfs.fat /sbin/mke2fs /usr/bin/syslinux /usr/bin/mtools; do copy_with_libs "$root" "$tool"; done
  for tool in sfdisk mkfs.fat mke2fs; do ln -sf "/sbin/$tool" "$root/bin/$tool"; done
  ln -sf /usr/bin/syslinux "$root/bin/syslinux"
  for tool in mcopy mmd mattrib; do ln -sf /usr/bin/mtools "$root/bin/$tool"; done
  # mtools converts names through the FAT code page (850) with glibc's iconv, which loads its converter at run time.
  local gconv=/usr/lib/x86_64-linux-gnu/gconv
  install -D -m 644 "$gconv/IBM850.so" "$root$gconv/IBM850.so"
  install -D -m 644 "$gconv/gconv-modules" "$root$gconv/gconv-modules"
  cp -r "$gconv/gconv-modules.d" "$root$gconv/"
  add_modules "$root" "$tree" "$release" "${drivers[@]}"
  cp "$tree/boot/vmlinuz-$release" "$root/payload/vmlinuz"
  cp "$work/corral-linux-installed.initrd" "$root/payload/initrd"
  local sb; sb=$(fetch_secure_boot)
  cp /usr/lib/syslinux/mbr/mbr.bin "$root/payload/"
  cp "$sb/usr/lib/shim/shimx64.efi.signed" "$root/payload/shimx64.efi"
  cp "$sb/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed" "$root/payload/grubx64.efi"
  system_syslinux_cfg > "$root/payload/syslinux.cfg"
  system_grub_cfg > "$root/payload/grub.cfg"
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) > "$work/installer.img"

  local iso="$work/iso"
  rm -rf "$iso"; mkdir -p "$iso/isolinux" "$iso/boot"
  cp "$tree/boot/vmlinuz-$release" "$iso/boot/vmlinuz"
  cp "$work/installer.img" "$iso/boot/installer.img"
  cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 "$iso/isolinux/"
  local append="console=tty0 console=ttyS0,115200 quiet loglevel=3 rdinit=/init"
  printf 'DEFAULT install\nPROMPT 0\nTIMEOUT 0\nLABEL install\n  KERNEL /boot/vmlinuz\n  INITRD /boot/installer.img\n  APPEND %s\n' "$append" > "$iso/isolinux/isolinux.cfg"
  # UEFI, Secure Boot on or off, as Debian's own install media boot: El Torito's EFI image holds shim and Debian's
  # signed GRUB for CDs (gcdx64.efi), which finds the disc by its /.disk/info and reads /boot/grub/grub.cfg from it;
  # the kernel it starts is Debian's signed one.
  mkdir -p "$iso/.disk" "$iso/boot/grub"
  echo "Corral installer 1.0" > "$iso/.disk/info"
  printf 'set timeout=0\nset default=0\nmenuentry "Corral installer" {\n  linux /boot/vmlinuz %s\n  initrd /boot/installer.img\n}\n' "$append" > "$iso/boot/grub/grub.cfg"
  local efi="$iso/boot/efiboot.img"
  rm -f "$efi"; mkfs.vfat -C -n CORRALEFI "$efi" 8192 >/dev/null
  MTOOLS_SKIP_CHECK=1 mmd -i "$efi" ::EFI ::EFI/BOOT
  MTOOLS_SKIP_CHECK=1 mcopy -i "$efi" "$sb/usr/lib/shim/shimx64.efi.signed" ::EFI/BOOT/BOOTX64.EFI
  MTOOLS_SKIP_CHECK=1 mcopy -i "$efi" "$sb/usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed" ::EFI/BOOT/grubx64.efi
  xorriso -as mkisofs -quiet -o "$target.partial" -V CORRAL_INSTALL -J -R \
    -b isolinux/isolinux.bin -c isolinux/boot.cat -no-emul-boot -boot-load-size 4 -boot-info-table \
    -eltorito-alt-boot -e boot/efiboot.img -no-emul-boot "$iso"
  mv "$target.partial" "$target"
  echo "$inputs-$release" > "$stamp"
  log "built $target"
}

# virtio_balloon: every VM has a balloon device, through which Corral sets its memory while it runs.
build_image corral-linux-test linux-image-cloud-amd64 yes \
  virtio_pci virtio_blk virtio_net virtio_console virtio_balloon qemu_fw_cfg button evdev
# ext4 (and jbd2) ask the crypto API for crc32c at mount time; with no modprobe in the guest it must already be loaded.
build_image corral-linux-notools linux-image-amd64 no \
  ata_piix sd_mod e1000 crc32c_generic ext4 qemu_fw_cfg button evdev
build_installer_iso
