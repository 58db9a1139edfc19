/**
 * Recovery use cases: choosing recovery points, bringing a DR site up and back, rolling an app back to its pre-deploy points, post-deploy marks, and the checks a restored disk must pass (file system, boot). They return results and report progress through callbacks; they never print. The CLI and the engine's hook server call the same code.
 */
package io.tidemark.recovery;
