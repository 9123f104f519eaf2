/**
 * What adapters need to know about tensor parallelism without depending on a collective backend:
 * how a rank's parameter relates to the single-process tensor ({@link
 * org.peft4j.core.parallel.Sharding}), which blocks hold such parameters ({@link
 * org.peft4j.core.parallel.ShardedBlock}), and how adapter files are saved and loaded merged or one
 * per rank ({@link org.peft4j.core.parallel.ShardedCheckpoint}). peft-parallel implements them.
 */
package org.peft4j.core.parallel;
