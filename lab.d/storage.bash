# The lab's storage server, sourced by ./lab: a namespace of its own on a storage network apart from the management
# network (as XenServer's guides advise: storage traffic, which is not encrypted, never crosses the management bridge),
# running Debian's userspace servers as a NAS or SAN would: nfs-ganesha (NFSv3 and v4, with rpcbind) exporting /srv/vms,
# tgt (iSCSI) serving one LUN, and Samba sharing the ISO library as //server/isos (as the seed's pool has its ISOs on a
# CIFS share). Each host reaches it through its own "storage0" interface.
# CORRAL_LAB_SR chooses the pool's shared SR: nfs (the default: type=nfs on the export), iscsi (type=lvmoiscsi on the
# LUN) or file (a directory every lab host sees, and no storage server). HA and the VMs' sanlock leases run on all
# three (on nfs and iscsi the statefile and the leases are volumes of the SR, which each host's qemu-storage-daemon
# exports to it as files: docs/ha.md, docs/storage.md).

LAB_SR=${CORRAL_LAB_SR:-nfs}
STORAGE_NS=${CORRAL_LAB_STORAGE_NS:-${NS_PREFIX%h}storage}
STORAGE_BRIDGE=${CORRAL_LAB_STORAGE_BRIDGE:-corralstor0}
STORAGE_EXPORT=/srv/vms                            # the NFS export, as the storage server names it
STORAGE_IQN=iqn.2026-12.lab.corral:vms             # the iSCSI target
STORAGE_SCSI_ID=360000000000000000e00000000010001  # its LUN 1 as udev's scsi_id names it (tgt's NAA designator)
STORAGE_LUN_SIZE=${CORRAL_LAB_LUN_SIZE:-64G}       # sparse: what VMs write is what the disk holds
STORAGE_SHARE=isos                                 # the SMB share the pool's ISO library is on
STORAGE_SMB_USER=isoreader                         # who reads it (password: root's)

case "$LAB_SR" in nfs | iscsi | file) ;; *) echo "[lab] error: CORRAL_LAB_SR=$LAB_SR: nfs, iscsi or file" >&2; exit 2 ;; esac

storage_used() { [ "$LAB_SR" != file ]; }
storage_address() { echo "$(cat "$RUN_DIR/storage-subnet").2"; }

# start_storage SUBNET: the storage network (the shell gets .1, the server .2, host N .1N), then the servers.
start_storage() {
  local snet=$1 dir="$LAB_DIR/storage" i ns
  mkdir -p "$dir/nfs" "$dir/isos" "$dir/ganesha-recovery" "$dir/outer-run" "$dir"/samba/{run,lock,state,cache,private,ncalrpc}
  [ -d "/sys/class/net/$STORAGE_BRIDGE" ] || ip link add "$STORAGE_BRIDGE" type bridge
  ip link set "$STORAGE_BRIDGE" up
  ip addr replace "$snet.1/24" dev "$STORAGE_BRIDGE"
  echo "$snet" > "$RUN_DIR/storage-subnet"
  ip netns add "$STORAGE_NS"
  ip -n "$STORAGE_NS" link set lo up
  storage_link "$STORAGE_NS" "${VETH_PREFIX}s0" eth0 "$snet.2"
  for i in $(seq "$HOSTS"); do storage_link "$(ns_of "$i")" "${VETH_PREFIX}s$i" storage0 "$snet.$((10 + i))"; done
  storage_ganesha_config "$snet.2" > "$dir/ganesha.conf"
  storage_samba_config "$snet.2" > "$dir/samba/smb.conf"
  echo "root = $STORAGE_SMB_USER" > "$dir/samba/users.map"
  [ -f "$dir/lun1.img" ] || truncate -s "$STORAGE_LUN_SIZE" "$dir/lun1.img"
  log "starting the storage server at $snet.2: NFS export $STORAGE_EXPORT, iSCSI target $STORAGE_IQN, SMB share $STORAGE_SHARE"
  # A mount namespace of its own, as a machine of its own has: its /run (rpcbind's and tgtd's sockets) is not this
  # machine's, so neither meets another rpcbind or tgtd here.
  ip netns exec "$STORAGE_NS" env STORAGE_SMB_PASSWORD="$ROOT_PASSWORD" unshare --mount --propagation private \
    bash "$here/lab.d/storage-server" "$dir" "$RUN_DIR" "$snet.2" "$STORAGE_EXPORT" "$STORAGE_IQN" >> "$LAB_DIR/storage.log" 2>&1 \
    || die "the storage server did not start (see $LAB_DIR/storage.log)"
}

storage_link() { # storage_link NAMESPACE ROOT-END INSIDE-NAME ADDRESS
  ip link add "$2" type veth peer name "$3" netns "$1"
  ip link set "$2" master "$STORAGE_BRIDGE" up
  ip -n "$1" addr add "$4/24" dev "$3"
  ip -n "$1" link set "$3" up
}

storage_ganesha_config() { # storage_ganesha_config ADDRESS
  cat <<CONF
NFS_CORE_PARAM {
  Bind_addr = $1;
  Protocols = 3, 4;
  Enable_NLM = false;
  Enable_RQUOTA = false;
}
NFSV4 { Graceless = true; RecoveryBackend = fs; RecoveryRoot = $LAB_DIR/storage/ganesha-recovery; }
EXPORT {
  Export_Id = 1;
  Path = $STORAGE_EXPORT;
  Pseudo = $STORAGE_EXPORT;
  Access_Type = RW;
  Squash = No_Root_Squash;
  Protocols = 3, 4;
  Transports = TCP;
  SecType = sys;
  FSAL { Name = VFS; }
}
LOG { Default_Log_Level = WARN; }
CONF
}

# Samba as a standalone file server: the share read-only to one person, whom the username map makes root on the server
# (no account is made on this machine); its state, locks and password database in the lab's directory.
storage_samba_config() { # storage_samba_config ADDRESS
  local d="$LAB_DIR/storage/samba"
  cat <<CONF
[global]
  server role = standalone server
  interfaces = $1/24
  bind interfaces only = yes
  disable netbios = yes
  smb ports = 445
  pid directory = $d/run
  lock directory = $d/lock
  state directory = $d/state
  cache directory = $d/cache
  private dir = $d/private
  ncalrpc dir = $d/ncalrpc
  log file = $d/log.%m
  passdb backend = tdbsam:$d/private/passdb.tdb
  username map = $d/users.map
  map to guest = never
[$STORAGE_SHARE]
  path = $LAB_DIR/storage/isos
  read only = yes
  valid users = root
CONF
}

# The pool's ISO library: on the storage server's SMB share when there is one, else a directory every host sees.
create_iso_library() { # create_iso_library HOST-UUID
  local common=(host-uuid="$1" name-label="ISO library" type=iso content-type=iso shared=true)
  if storage_used; then
    xe sr-create "${common[@]}" device-config:location="//$(storage_address)/$STORAGE_SHARE" \
      device-config:username="$STORAGE_SMB_USER" device-config:cifspassword="$ROOT_PASSWORD"
  else
    xe sr-create "${common[@]}" device-config:location="$LAB_DIR/iso"
  fi
}

# LUN masking, as a SAN administrator sets it up: the target admits the pool's hosts by their initiator names (each
# host's iscsi_iqn, which every session of the host logs in under) and no one else. tgtd runs in the storage server's
# mount namespace, where its control socket is: tgtadm is run there. Repeating it is harmless.
admit_pool_initiators() {
  local pid h iqn; pid=$(cat "$RUN_DIR/storage-tgtd.pid")
  for h in $(xe host-list --minimal | tr , ' '); do
    iqn=$(xe host-param-get uuid="$h" param-name=iscsi_iqn)
    nsenter -t "$pid" -m tgtadm --lld iscsi --op bind --mode target --tid 1 --initiator-name "$iqn" 2>/dev/null || true
  done
  nsenter -t "$pid" -m tgtadm --lld iscsi --op unbind --mode target --tid 1 -I ALL 2>/dev/null || true
}

# The pool's shared SR on what CORRAL_LAB_SR names; prints its uuid.
create_shared_sr() { # create_shared_sr HOST-UUID
  local common=(host-uuid="$1" name-label="Shared storage" content-type=user shared=true)
  case "$LAB_SR" in
    file) xe sr-create "${common[@]}" type=file device-config:location="$LAB_DIR/shared" ;;
    nfs) xe sr-create "${common[@]}" type=nfs device-config:server="$(storage_address)" device-config:serverpath="$STORAGE_EXPORT" ;;
    iscsi) xe sr-create "${common[@]}" type=lvmoiscsi device-config:target="$(storage_address)" \
      device-config:targetIQN="$STORAGE_IQN" device-config:SCSIid="$STORAGE_SCSI_ID" ;;
  esac
}

stop_storage() {
  # ganesha and rpcbind are asked to go; tgtd ignores SIGTERM while it serves a target, and its LUN goes with the lab.
  [ -f "$RUN_DIR/storage-tgtd.pid" ] && { kill -9 "$(cat "$RUN_DIR/storage-tgtd.pid")" 2>/dev/null; rm -f "$RUN_DIR/storage-tgtd.pid"; }
  kill_pidfiles "$RUN_DIR/storage-ganesha.pid" "$RUN_DIR/storage-rpcbind.pid" "$RUN_DIR/storage-smbd.pid"
  ip netns list | awk '{print $1}' | grep -qx "$STORAGE_NS" && ip netns delete "$STORAGE_NS"
  [ -d "/sys/class/net/$STORAGE_BRIDGE" ] && ip link del "$STORAGE_BRIDGE"
  return 0
}

storage_summary() { # the line ./lab up prints for the storage server
  storage_used || return 0
  local a; a=$(storage_address)
  printf '  Storage:    %s (namespace %s): NFS %s:%s, iSCSI %s:3260 %s LUN 1 (SCSIid %s),\n' "$a" "$STORAGE_NS" "$a" "$STORAGE_EXPORT" "$a" "$STORAGE_IQN" "$STORAGE_SCSI_ID"
  printf '              SMB //%s/%s (user %s; the ISO library; put ISOs in %s)\n' "$a" "$STORAGE_SHARE" "$STORAGE_SMB_USER" "$LAB_DIR/storage/isos"
}

# The agents mount the ISO library's share in userspace (smbnetfs, under each host's state directory), as a host's
# kernel would mount it: those mounts die with their host (./lab pull-plug, a reset) and go before the lab's files.
share_pidfiles() { # share_pidfiles N: the files listing the smbnetfs processes of host N's mounted shares
  local f; for f in "$LAB_DIR/host$1"/state/sr-mount/*/smbnetfs.pids; do [ -f "$f" ] && echo "$f"; done
  return 0
}

unmount_shares() { # unmount_shares N: host N's smbnetfs processes killed (their mounts, in the host's mount namespace,
  # go with them) and the mount points released where this shell sees them (nowhere, unless the host's agent ran here)
  local f pid; for f in $(share_pidfiles "$1"); do
    for pid in $(cat "$f"); do kill -9 "$pid" 2>/dev/null || true; done
    umount -l "$(dirname "$f")/mnt" 2>/dev/null || true; rm -f "$f"
  done
  return 0
}
