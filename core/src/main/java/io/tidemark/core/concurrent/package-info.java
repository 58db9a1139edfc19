/** Small concurrency building blocks shared by every module. */
package io.tidemark.core.concurrent;
