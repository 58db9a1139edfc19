package io.tidemark.testkit.ceph;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolver;

/**
 * Shares one {@link CephCluster} between every test class of a JVM that asks for it: the cluster
 * starts when the first class resolves a {@code CephCluster} parameter (typically of a static
 * {@code @BeforeAll} method) and is closed when the whole test run ends, from JUnit's root store.
 * Test classes must keep to their own pools, buckets or key prefixes.
 *
 * <pre>{@code
 * @ExtendWith(CephClusterExtension.class)
 * class RadosObjectTargetIT {
 *     static CephCluster ceph;
 *
 *     @BeforeAll
 *     static void cluster(CephCluster shared) {
 *         ceph = shared;
 *     }
 * }
 * }</pre>
 */
public final class CephClusterExtension implements ParameterResolver {

    private static final ExtensionContext.Namespace NAMESPACE =
            ExtensionContext.Namespace.create(CephClusterExtension.class);

    @Override
    public boolean supportsParameter(ParameterContext parameter, ExtensionContext context) {
        return parameter.getParameter().getType() == CephCluster.class;
    }

    @Override
    public CephCluster resolveParameter(ParameterContext parameter, ExtensionContext context) {
        // The root store closes AutoCloseable values when the test plan finishes.
        return context.getRoot()
                .getStore(NAMESPACE)
                .computeIfAbsent(CephCluster.class, k -> start(), CephCluster.class);
    }

    private static CephCluster start() {
        try {
            return CephCluster.start(Files.createTempDirectory("tidemark-ceph-"));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create a directory for Ceph", e);
        }
    }
}
