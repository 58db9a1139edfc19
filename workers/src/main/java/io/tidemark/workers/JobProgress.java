package io.tidemark.workers;

import java.time.Instant;

/**
 * How far one running snapshot job has got, as the worker knows it in memory.
 *
 * @param jobId the job
 * @param vm its VM
 * @param startedAt when the worker was handed it
 * @param stage the stage it is in: {@code queued}, {@code prepare}, {@code capture}, {@code export}
 *     or {@code commit} (the names {@code JobFailed.stage} uses)
 * @param stageNumber the stage's place, 1-based, of {@code stages}
 * @param stages how many stages a job goes through
 * @param stageSince when it entered the stage
 * @param disk during {@code export}: the disk being read, 1-based; 0 otherwise
 * @param disks during {@code export}: how many disks the job reads; 0 otherwise
 * @param bytesRead during {@code export}: bytes read so far from the disks begun
 * @param bytesToRead during {@code export}: bytes the disks begun will read (a disk not begun yet
 *     adds its share when it begins); 0 before
 */
public record JobProgress(
        String jobId,
        String vm,
        Instant startedAt,
        String stage,
        int stageNumber,
        int stages,
        Instant stageSince,
        int disk,
        int disks,
        long bytesRead,
        long bytesToRead) {}
