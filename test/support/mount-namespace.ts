/**
 * The start of a shell script run in a mount namespace of its own (`unshare --mount`): it
 * unmounts, in that namespace only, every file system on a loop, md, nbd or device-mapper
 * device. A new mount namespace starts with a private copy of every mount on the machine
 * (this machine's / is not shared), and a copy keeps its file system mounted after its owner —
 * another test file, an image build — has unmounted it, for as long as the namespace lives:
 * the owner's e2fsck or resize2fs then fails with "in use". Ends with `&&`-able success.
 */
export const DROP_BLOCK_DEVICE_MOUNTS =
  `awk '$1 ~ /^\\/dev\\/(loop|md|nbd|dm-)/ { print $2 }' /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done; true`;
