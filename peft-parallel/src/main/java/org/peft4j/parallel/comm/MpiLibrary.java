package org.peft4j.parallel.comm;

import com.sun.jna.Library;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.IntByReference;
import com.sun.jna.ptr.PointerByReference;

/** The few functions of the MPI C API that {@link MpiCommunicator} calls, bound with JNA. */
interface MpiLibrary extends Library {

    int MPI_Initialized(IntByReference flag);

    int MPI_Finalized(IntByReference flag);

    int MPI_Init(Pointer argc, Pointer argv);

    int MPI_Finalize();

    int MPI_Comm_rank(Pointer comm, IntByReference rank);

    int MPI_Comm_size(Pointer comm, IntByReference size);

    int MPI_Allreduce(
            Pointer sendbuf,
            Pointer recvbuf,
            int count,
            Pointer datatype,
            Pointer op,
            Pointer comm);

    int MPI_Allgather(
            Pointer sendbuf,
            int sendcount,
            Pointer sendtype,
            Pointer recvbuf,
            int recvcount,
            Pointer recvtype,
            Pointer comm);

    int MPI_Bcast(Pointer buffer, int count, Pointer datatype, int root, Pointer comm);

    int MPI_Barrier(Pointer comm);

    int MPI_Comm_split(Pointer comm, int color, int key, PointerByReference newcomm);

    int MPI_Comm_free(PointerByReference comm);

    int MPI_Error_string(int errorcode, byte[] string, IntByReference resultlen);
}
