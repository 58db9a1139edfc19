/** The repository's domain records (manifest and disk entries); their byte layout is in the formats module. */
package io.tidemark.core.repository;
