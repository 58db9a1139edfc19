package io.tidemark.core.bus;

/** Topic names. The roles are the contract; the names may be prefixed per installation. */
public final class Topics {
    public static final String TRIGGERS = "tidemark.triggers";
    public static final String JOBS_PREFIX = "tidemark.jobs.";
    public static final String INVENTORY = "tidemark.inventory";
    public static final String RESTORE_POINTS = "tidemark.restore-points";
    public static final String REPLICATION = "tidemark.replication";
    public static final String JOB_STATUS = "tidemark.job-status";
    public static final String DEAD_LETTER = "tidemark.dead-letter";

    private Topics() {}

    /** The topic the worker on {@code host} consumes its jobs from. */
    public static String jobs(String host) {
        return JOBS_PREFIX + host;
    }
}
