using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;

namespace Qwen3.Net.Kernels;

/// <summary>A unit of parallel work: processes items [start, end). Structs, so dispatch allocates nothing.</summary>
internal interface IRangeJob
{
    /// <param name="start">First item.</param>
    /// <param name="end">One past the last item.</param>
    /// <param name="worker">0 .. ThreadCount − 1: which thread runs this range, to pick per-thread scratch.</param>
    void Execute(int start, int end, int worker);
}

/// <summary>
/// Persistent threads (ThreadCount − 1 workers plus the calling thread) that share out the items of one job at a time.
/// Items are claimed in shrinking chunks from an atomic counter (each a fixed share of what is left), so a thread slowed
/// by another process does not hold up the rest, and the last chunks are small enough that both finish together.
/// Waiting threads spin briefly (the next kernel of a forward pass follows within microseconds), then block,
/// so an idle context costs no CPU.
/// </summary>
internal sealed unsafe class WorkerPool : IDisposable
{
    // A claim takes 1/(ClaimShare · threads) of the items left: large first chunks keep each thread's reads sequential,
    // and the one-item tail chunks cut the wait at the end of a product.
    private const int ClaimShare = 2;

    private static readonly long SpinTicks = Stopwatch.Frequency / 10_000; // 100 µs

    private readonly Worker[] _workers;
    private readonly SemaphoreSlim _callerWake = new(0);

    private void* _job;
    private delegate*<void*, int, int, int, void> _invoke;
    private int _count;
    private int _nextItem;
    private int _pending;
    private int _generation;
    private int _callerSleeping;
    private int _running;
    private bool _stopping;
    private Exception? _failure;

    public WorkerPool(int threadCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threadCount, 1);
        ThreadCount = threadCount;
        _workers = new Worker[threadCount - 1];
        for (int i = 0; i < _workers.Length; i++)
        {
            var worker = new Worker(this, i + 1);
            _workers[i] = worker;
            worker.Thread.Start();
        }
    }

    public int ThreadCount { get; }

    /// <summary>
    /// Whether a row-by-row pass over <paramref name="elements"/> floats (a norm, the rotation, a copy) is worth
    /// sharing out: in a prompt these run between the matrix products, where the other threads would otherwise wait;
    /// a decoded token's few thousand floats are done before a worker could wake.
    /// </summary>
    public bool WorthSharing(long elements) => ThreadCount > 1 && elements >= 1 << 16;

    /// <summary>
    /// Runs a row-by-row pass of <paramref name="count"/> items over <paramref name="elements"/> floats: shared out when
    /// <see cref="WorthSharing"/> says so, otherwise on the calling thread alone.
    /// </summary>
    public void RunPass<TJob>(ref TJob job, int count, long elements)
        where TJob : struct, IRangeJob
    {
        if (WorthSharing(elements))
        {
            Run(ref job, count);
        }
        else if (count > 0)
        {
            job.Execute(0, count, 0);
        }
    }

    /// <summary>
    /// Bytes the worker threads (not the caller) had allocated over their lifetime when each last finished a job: lets a
    /// test check that a forward pass allocates nothing on them without counting other threads of the process.
    /// </summary>
    internal long WorkerAllocatedBytes
    {
        get
        {
            // A loop, not LINQ: the reading thread is measured too, and an enumerator would be counted against it.
            long total = 0;
            foreach (Worker worker in _workers)
            {
                total += Volatile.Read(ref worker.AllocatedBytes);
            }

            return total;
        }
    }

    /// <summary>
    /// Workers that have stopped spinning and block (or are about to block) on their semaphore until the next job: lets a
    /// test wait for that state instead of sleeping and hoping.
    /// </summary>
    internal int SleepingWorkers
    {
        get
        {
            int sleeping = 0;
            foreach (Worker worker in _workers)
            {
                sleeping += Volatile.Read(ref worker.Sleeping);
            }

            return sleeping;
        }
    }

    /// <summary>
    /// Runs job.Execute over [0, count) on all threads and returns when every item is done.
    /// <paramref name="job"/> must be a local of the caller (it is read through a pointer while the threads run).
    /// The first exception thrown by any thread is rethrown here, after all threads have stopped touching the job.
    /// </summary>
    public void Run<TJob>(ref TJob job, int count)
        where TJob : struct, IRangeJob
    {
        if (count <= 0)
        {
            return;
        }

        ObjectDisposedException.ThrowIf(_stopping, this);
        if (_workers.Length == 0)
        {
            job.Execute(0, count, 0);
            return;
        }

        if (Interlocked.Exchange(ref _running, 1) != 0)
        {
            throw new InvalidOperationException("WorkerPool.Run is not reentrant: a job may not start another, and one context runs one forward pass at a time.");
        }

        try
        {
            _job = Unsafe.AsPointer(ref job);
            _invoke = &Invoke<TJob>;
            _count = count;
            _nextItem = 0;
            _failure = null;
            Volatile.Write(ref _pending, _workers.Length);
            Interlocked.Increment(ref _generation);
            foreach (Worker worker in _workers)
            {
                if (Interlocked.Exchange(ref worker.Sleeping, 0) == 1)
                {
                    worker.Wake.Release();
                }
            }

            Work(0);
            WaitForWorkers();
            _job = null;
            if (_failure is { } failure)
            {
                _failure = null;
                ExceptionDispatchInfo.Throw(failure);
            }
        }
        finally
        {
            Volatile.Write(ref _running, 0);
        }
    }

    public void Dispose()
    {
        if (_stopping)
        {
            return;
        }

        _stopping = true;
        Interlocked.Increment(ref _generation);
        foreach (Worker worker in _workers)
        {
            if (Interlocked.Exchange(ref worker.Sleeping, 0) == 1)
            {
                worker.Wake.Release();
            }
        }

        foreach (Worker worker in _workers)
        {
            worker.Thread.Join();
            worker.Wake.Dispose();
        }

        _callerWake.Dispose();
    }

    private static void Invoke<TJob>(void* job, int start, int end, int worker)
        where TJob : struct, IRangeJob =>
        Unsafe.AsRef<TJob>(job).Execute(start, end, worker);

    private void Work(int worker)
    {
        try
        {
            while (true)
            {
                int start = Volatile.Read(ref _nextItem);
                if (start >= _count)
                {
                    return;
                }

                int end = start + Math.Max(1, (_count - start) / (ClaimShare * ThreadCount));
                if (Interlocked.CompareExchange(ref _nextItem, end, start) == start)
                {
                    _invoke(_job, start, end, worker);
                }
            }
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref _failure, e, null);
            // The other threads stop at their next claim: a failed forward pass is not worth finishing.
            Volatile.Write(ref _nextItem, int.MaxValue / 2);
        }
    }

    private void WaitForWorkers()
    {
        long deadline = Stopwatch.GetTimestamp() + SpinTicks;
        var spinner = default(SpinWait);
        while (Volatile.Read(ref _pending) != 0)
        {
            if (Stopwatch.GetTimestamp() < deadline)
            {
                spinner.SpinOnce(sleep1Threshold: -1);
                continue;
            }

            // Announce the sleep, then look again: a worker that finished in between either sees the flag and
            // releases the semaphore, or has already been seen to finish.
            Volatile.Write(ref _callerSleeping, 1);
            Interlocked.MemoryBarrier();
            if (Volatile.Read(ref _pending) == 0)
            {
                if (Interlocked.Exchange(ref _callerSleeping, 0) == 1)
                {
                    break;
                }
            }

            _callerWake.Wait();
        }
    }

    private void WorkerLoop(Worker self)
    {
        int seen = 0;
        while (true)
        {
            long deadline = Stopwatch.GetTimestamp() + SpinTicks;
            var spinner = default(SpinWait);
            while (Volatile.Read(ref _generation) == seen)
            {
                if (Stopwatch.GetTimestamp() < deadline)
                {
                    spinner.SpinOnce(sleep1Threshold: -1);
                    continue;
                }

                Volatile.Write(ref self.Sleeping, 1);
                Interlocked.MemoryBarrier();
                if (Volatile.Read(ref _generation) != seen && Interlocked.Exchange(ref self.Sleeping, 0) == 1)
                {
                    break;
                }

                // Either no job yet, or the caller took the flag and has released (or will release) the semaphore.
                self.Wake.Wait();
            }

            seen = Volatile.Read(ref _generation);
            if (_stopping)
            {
                return;
            }

            Work(self.Index);
            Volatile.Write(ref self.AllocatedBytes, GC.GetAllocatedBytesForCurrentThread());
            if (Interlocked.Decrement(ref _pending) == 0 && Interlocked.Exchange(ref _callerSleeping, 0) == 1)
            {
                _callerWake.Release();
            }
        }
    }

    private sealed class Worker
    {
        public readonly SemaphoreSlim Wake = new(0);
        public readonly Thread Thread;
        public readonly int Index;
        public int Sleeping;
        public long AllocatedBytes;

        public Worker(WorkerPool pool, int index)
        {
            Index = index;
            Thread = new Thread(() => pool.WorkerLoop(this)) { IsBackground = true, Name = $"Qwen3.Net worker {index}" };
        }
    }
}
