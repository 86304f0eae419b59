// The runtime honours this attribute (it is not shipped in the BCL): it lets Vae.ML call the ML.NET members it was
// compiled against from publicized reference copies (see build/MlNetInternals.targets and MlNetInternals.cs).
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Core")]
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Data")]

namespace System.Runtime.CompilerServices;

/// <summary>Lets this assembly access non-public members of the named assembly at run time.</summary>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
internal sealed class IgnoresAccessChecksToAttribute : Attribute
{
    /// <summary>Creates the attribute for <paramref name="assemblyName"/>.</summary>
    public IgnoresAccessChecksToAttribute(string assemblyName) => AssemblyName = assemblyName;

    /// <summary>The simple name of the assembly whose access checks are ignored.</summary>
    public string AssemblyName { get; }
}
