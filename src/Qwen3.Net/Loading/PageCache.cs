using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Qwen3.Net.Loading;

/// <summary>Drops model files' cached pages and reads them back before they are mapped, for <see cref="Qwen3ModelOptions.RefreshPageCache"/>.</summary>
/// <remarks>
/// Only hints: elsewhere than Linux on x64 and arm64, or where a call fails, nothing happens, and a file that cannot be
/// opened is left for the loader to report.
/// </remarks>
internal static partial class PageCache
{
    private const int FadviseDontNeed = 4; // POSIX_FADV_DONTNEED on Linux's x64 and arm64

    /// <summary>
    /// The write buffer of the model files the library writes (GGUF files, downloads): the page cache keeps a written
    /// file in folios no larger than its writes, and only 2 MiB ones, from aligned writes of 2 MiB or more, can be
    /// mapped with 2 MiB entries when the file is loaded next (docs/benchmarks.md).
    /// </summary>
    public const int WriteBufferBytes = 4 << 20;

    /// <summary>
    /// <see cref="Drop"/>, then <see cref="ReadBack"/>. Reading the files back in order brings them in as large folios
    /// before the first forward pass, at the disk's sequential rate (the maps' page faults do too since the maps are
    /// advised for huge pages, but a page at a time as the pass reaches it; without that advice they brought back only
    /// 140 MiB of the 1.7B model's 3.3 GB in large folios, docs/benchmarks.md); <c>posix_fadvise(WILLNEED)</c> reads at
    /// most a few MiB.
    /// </summary>
    public static void Refresh(IReadOnlyList<string> files)
    {
        // Where nothing can be dropped, reading the files back would only cost the read.
        if (Drop(files))
        {
            ReadBack(files);
        }
    }

    /// <summary>
    /// Asks Linux to drop the files' cached pages (<c>posix_fadvise(DONTNEED)</c>); pages some process maps, or not yet
    /// written back, stay. Returns whether every file was advised: false elsewhere, or where a call failed.
    /// </summary>
    public static bool Drop(IReadOnlyList<string> files)
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture is not (Architecture.X64 or Architecture.Arm64))
        {
            return false;
        }

        bool all = true;
        foreach (string file in files)
        {
            try
            {
                using SafeFileHandle handle = File.OpenHandle(file, FileMode.Open, FileAccess.Read, FileShare.Read);
                all &= PosixFadvise(handle, 0, 0, FadviseDontNeed) == 0;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or DllNotFoundException or EntryPointNotFoundException)
            {
                all = false;
            }
        }

        return all;
    }

    /// <summary>Reads each file once from start to end, in 4 MiB reads, so the kernel's sequential read-ahead fills the page cache.</summary>
    public static void ReadBack(IReadOnlyList<string> files)
    {
        byte[] buffer = GC.AllocateUninitializedArray<byte>(4 << 20);
        foreach (string file in files)
        {
            try
            {
                using SafeFileHandle handle = File.OpenHandle(file, FileMode.Open, FileAccess.Read, FileShare.Read);
                for (long offset = 0; ;)
                {
                    int read = RandomAccess.Read(handle, buffer, offset);
                    if (read == 0)
                    {
                        break;
                    }

                    offset += read;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    private static partial int PosixFadvise(SafeFileHandle fd, long offset, long length, int advice);
}
