package io.tidemark.workers.files;

/**
 * One file system libguestfs found on a disk of a restore point: on the whole disk, a partition
 * (MBR or GPT) or an LVM logical volume.
 *
 * @param name how paths name it: the device without {@code /dev/} ({@code sda1}, {@code vg0/root})
 * @param device the appliance's device ({@code /dev/sda1}, {@code /dev/vg0/root})
 * @param type what libguestfs detected ({@code ext4}, {@code xfs}, {@code vfat}, {@code ntfs},
 *     {@code swap}, {@code unknown} …)
 * @param readable whether Tidemark can list and get its files
 */
public record FileSystemInfo(String name, String device, String type, boolean readable) {}
