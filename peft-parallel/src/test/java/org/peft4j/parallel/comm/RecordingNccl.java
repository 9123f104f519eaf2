package org.peft4j.parallel.comm;

import com.sun.jna.Pointer;
import com.sun.jna.ptr.IntByReference;
import com.sun.jna.ptr.PointerByReference;

import java.util.ArrayList;
import java.util.List;

/**
 * A stand-in for NCCL and the CUDA runtime that records calls and returns chosen results, so that
 * {@link NcclCommunicator}'s logic runs on a machine without a GPU.
 */
final class RecordingNccl implements NcclLibrary, CudaRuntime {

    final List<String> calls = new ArrayList<>();
    int devices = 1;
    int initResult;
    byte[] uniqueId = new byte[128];
    NcclLibrary.UniqueId.ByValue receivedId;

    RecordingNccl() {
        for (int i = 0; i < uniqueId.length; i++) {
            uniqueId[i] = (byte) (i * 7 + 3);
        }
    }

    @Override
    public int ncclGetUniqueId(NcclLibrary.UniqueId id) {
        calls.add("ncclGetUniqueId");
        System.arraycopy(uniqueId, 0, id.internal, 0, uniqueId.length);
        id.write();
        return 0;
    }

    @Override
    public int ncclCommInitRank(
            PointerByReference comm, int nranks, UniqueId.ByValue id, int rank) {
        calls.add("ncclCommInitRank(" + nranks + ", " + rank + ')');
        receivedId = id;
        comm.setValue(new Pointer(0xC0FFEE));
        return initResult;
    }

    @Override
    public int ncclAllReduce(
            Pointer send, Pointer recv, long count, int type, int op, Pointer comm, Pointer s) {
        calls.add("ncclAllReduce");
        return 0;
    }

    @Override
    public int ncclAllGather(
            Pointer send, Pointer recv, long count, int type, Pointer comm, Pointer stream) {
        calls.add("ncclAllGather");
        return 0;
    }

    @Override
    public int ncclBroadcast(
            Pointer send,
            Pointer recv,
            long count,
            int type,
            int root,
            Pointer comm,
            Pointer stream) {
        calls.add("ncclBroadcast");
        return 0;
    }

    @Override
    public int ncclCommSplit(
            Pointer comm, int color, int key, PointerByReference newcomm, Pointer config) {
        calls.add("ncclCommSplit(" + color + ", " + key + ')');
        newcomm.setValue(new Pointer(0xBEEF));
        return 0;
    }

    @Override
    public int ncclCommUserRank(Pointer comm, IntByReference rank) {
        rank.setValue(0);
        return 0;
    }

    @Override
    public int ncclCommCount(Pointer comm, IntByReference count) {
        count.setValue(1);
        return 0;
    }

    @Override
    public int ncclCommDestroy(Pointer comm) {
        calls.add("ncclCommDestroy(" + Pointer.nativeValue(comm) + ')');
        return 0;
    }

    @Override
    public String ncclGetErrorString(int result) {
        return "stand-in error " + result;
    }

    @Override
    public int cudaGetDeviceCount(IntByReference count) {
        count.setValue(devices);
        return 0;
    }

    @Override
    public int cudaSetDevice(int device) {
        calls.add("cudaSetDevice(" + device + ')');
        return 0;
    }

    @Override
    public int cudaStreamSynchronize(Pointer stream) {
        calls.add("cudaStreamSynchronize");
        return 0;
    }

    @Override
    public String cudaGetErrorString(int error) {
        return "cuda stand-in error " + error;
    }
}
