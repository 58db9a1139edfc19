package io.tidemark.scheduler.hook;

import java.util.List;

/**
 * Applies a {@link PostDeployReport} to the restore points of the deploy, wherever they are (the
 * primary repository and every target holding them). Implemented where the repositories are.
 */
@FunctionalInterface
public interface PostDeployHandler {

    /** One restore point at one location, and the mark it got. */
    record MarkedPoint(String location, String vm, String restorePointId, String mark) {}

    /**
     * Pins (failure) or expires (success) the pre-deploy points of the reported deploy; applying
     * the same report twice leaves the same marks.
     *
     * @return the points marked, by location
     * @throws io.tidemark.core.PermanentException if no pre-deploy point of that deploy exists
     * @throws io.tidemark.core.RetriableException if a repository is unavailable
     */
    List<MarkedPoint> apply(PostDeployReport report);
}
