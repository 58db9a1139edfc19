package io.tidemark.targets.s3;

import io.tidemark.core.PermanentException;
import java.time.Duration;
import java.util.Objects;

/**
 * The S3 Object Lock retention {@link S3ObjectTarget} puts on every immutable object it writes
 * (everything outside {@code state/}): the object's version cannot be deleted or overwritten
 * until {@code period} after its upload. The bucket must have been created with Object Lock
 * enabled (AWS S3, Ceph RGW; not S3Proxy, and not Alibaba OSS's S3 API).
 *
 * @param mode {@link Mode#GOVERNANCE} or {@link Mode#COMPLIANCE}
 * @param period how long each object stays locked, at least one day
 */
public record ObjectLockRetention(Mode mode, Duration period) {

    /** The two retention modes of S3 Object Lock. */
    public enum Mode {
        /**
         * Users with {@code s3:BypassGovernanceRetention} may still delete the version early by
         * asking to bypass governance retention; nobody else can.
         */
        GOVERNANCE,
        /** Nobody, not even the root user or the RGW admin through S3, can delete the version early. */
        COMPLIANCE
    }

    /** Validates the settings; bad settings are permanent errors. */
    public ObjectLockRetention {
        Objects.requireNonNull(mode, "mode");
        if (period == null || period.compareTo(Duration.ofDays(1)) < 0) {
            throw new PermanentException(
                    "invalid S3 Object Lock retention: the period must be at least one day (got " + period + ")");
        }
    }

    /** A retention of whole days, as configured by {@code objectLockDays}. */
    public static ObjectLockRetention ofDays(Mode mode, long days) {
        if (days < 1) {
            throw new PermanentException(
                    "invalid S3 Object Lock retention: objectLockDays must be at least 1 (got " + days + ")");
        }
        return new ObjectLockRetention(mode, Duration.ofDays(days));
    }

    /**
     * The retention {@code objectLockMode} and {@code objectLockDays} configure: both or neither.
     *
     * @return {@code null} when neither is set
     * @throws PermanentException when only one is set, or either is invalid
     */
    public static ObjectLockRetention of(String mode, Integer days) {
        if (mode == null && days == null) {
            return null;
        }
        if (mode == null || days == null) {
            throw new PermanentException(
                    "set both objectLockMode (GOVERNANCE or COMPLIANCE) and objectLockDays, or neither");
        }
        return ofDays(mode(mode), days);
    }

    /** Parses {@code GOVERNANCE} or {@code COMPLIANCE} (any case). */
    public static Mode mode(String name) {
        try {
            return Mode.valueOf(Objects.requireNonNull(name, "name").strip().toUpperCase(java.util.Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new PermanentException("invalid S3 Object Lock mode '" + name + "': use GOVERNANCE or COMPLIANCE", e);
        }
    }
}
