package io.tidemark.core.hypervisor;

/**
 * One disk of a VM.
 *
 * @param name stable name of the disk within its VM (the guest device id), used in manifests
 * @param node the hypervisor's name for the block node that holds the disk's content
 * @param sizeBytes virtual size
 */
public record DiskInfo(String name, String node, long sizeBytes) {}
