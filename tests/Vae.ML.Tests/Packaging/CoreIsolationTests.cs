using Mono.Cecil;
using Vae.ML.Datasets;

namespace Vae.ML.Tests.Packaging;

/// <summary>
/// The core package opens no network connection and starts no process (the data sets, which do both, are the separate
/// Vae.ML.Datasets package). Checked on the compiled IL: every type Vae.ML.dll refers to is listed with Mono.Cecil.
/// </summary>
public sealed class CoreIsolationTests
{
    private static readonly string[] ForbiddenNamespaces = ["System.Net", "System.Net.Http", "System.Net.Sockets", "System.Net.WebSockets"];
    private static readonly string[] ForbiddenTypes = ["System.Diagnostics.Process", "System.Diagnostics.ProcessStartInfo"];

    private static IReadOnlyList<string> ReferencedTypes(string assemblyPath)
    {
        using var module = ModuleDefinition.ReadModule(assemblyPath);
        return module.GetTypeReferences()
            .Select(type => type.IsNested ? type.DeclaringType.FullName : type.FullName)
            .Distinct()
            .ToList();
    }

    private static IReadOnlyList<string> Offending(IReadOnlyList<string> types) =>
        types.Where(type => ForbiddenTypes.Contains(type)
                            || ForbiddenNamespaces.Any(ns => type.StartsWith(ns + ".", StringComparison.Ordinal)))
            .ToList();

    [Fact]
    public void Core_assembly_refers_to_no_network_or_process_type()
    {
        IReadOnlyList<string> types = ReferencedTypes(typeof(VaeTransformer).Assembly.Location);

        types.Should().NotBeEmpty();
        Offending(types).Should().BeEmpty("Vae.ML must open no connection and start no process; that belongs in Vae.ML.Datasets");
    }

    [Fact]
    public void The_check_sees_the_network_and_process_use_of_the_datasets_assembly()
    {
        // The same check on Vae.ML.Datasets must find HttpClient and Process: proof that the check above can fail.
        IReadOnlyList<string> offending = Offending(ReferencedTypes(typeof(Mnist).Assembly.Location));

        offending.Should().Contain("System.Net.Http.HttpClient").And.Contain("System.Diagnostics.Process");
    }

    [Fact]
    public void Data_sets_live_outside_the_core_assembly()
    {
        typeof(Mnist).Assembly.GetName().Name.Should().Be("Vae.ML.Datasets");
        typeof(VaeTransformer).Assembly.GetTypes()
            .Where(type => type.Namespace == "Vae.ML.Datasets")
            .Should().BeEmpty();
    }
}
