/**
 * Collective communication between ranks: the {@link org.peft4j.parallel.comm.Communicator} SPI, a
 * world of one process, Open MPI for CPU tensors and NCCL for CUDA tensors.
 */
package org.peft4j.parallel.comm;
