using System.Runtime.InteropServices;

namespace Qwen3.Net.Loading;

/// <summary>
/// Linux's <c>madvise</c> hints for the memory the library allocates or maps. Only hints: elsewhere than Linux, or where
/// the call fails, nothing happens and the memory works the same.
/// </summary>
internal static unsafe partial class MemoryAdvice
{
    // The values in <sys/mman.h>, the same on Linux's x64 and arm64.
    private const int DontNeed = 4;
    private const int HugePage = 14;

    private static volatile bool s_unavailable;

    /// <summary>Asks for transparent huge pages to back [<paramref name="start"/>, + <paramref name="bytes"/>).</summary>
    public static void HugePages(void* start, nuint bytes) => Advise(start, bytes, HugePage);

    /// <summary>
    /// Unmaps the whole pages of [<paramref name="start"/>, + <paramref name="bytes"/>) from the process. Only for a
    /// read-only shared file map: its pages stay in the page cache as clean file pages, and a later read maps them back;
    /// on anonymous or private memory the same advice would discard the contents.
    /// </summary>
    public static void DropMappedPages(byte* start, long bytes) => DropPages(start, bytes);

    /// <summary>
    /// Gives the whole pages of [<paramref name="start"/>, + <paramref name="bytes"/>) back to the system, for private
    /// memory about to be freed: the C allocator keeps freed blocks below its mmap threshold (32 MiB at most) in its
    /// heaps, resident, and a disposed model's scratch stayed in the process's resident set.
    /// </summary>
    public static void DiscardFreed(void* start, long bytes) => DropPages((byte*)start, bytes);

    private static void DropPages(byte* start, long bytes)
    {
        nint page = Environment.SystemPageSize;
        nint first = ((nint)start + page - 1) & ~(page - 1);
        nint end = ((nint)start + (nint)bytes) & ~(page - 1);
        if (end > first)
        {
            Advise((void*)first, (nuint)(end - first), DontNeed);
        }
    }

    private static void Advise(void* start, nuint bytes, int advice)
    {
        if (!OperatingSystem.IsLinux() || s_unavailable)
        {
            return;
        }

        try
        {
            _ = Madvise(start, bytes, advice);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            s_unavailable = true;
        }
    }

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(void* address, nuint length, int advice);
}
