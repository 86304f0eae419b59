using System.Reflection;
using Microsoft.ML;
using Mono.Cecil;
using Mono.Cecil.Cil;
using Vae.ML.Internals;

namespace Vae.ML.Tests.Persistence;

/// <summary>
/// Guards what Vae.ML relies on in ML.NET. The library's IL is read with Mono.Cecil and every reference into a
/// Microsoft.ML assembly is resolved against the ML.NET assemblies this test process actually runs with: when a future
/// ML.NET renames, removes or changes one of them, these tests name it instead of users meeting a MissingMethodException.
/// </summary>
public class MlNetContractTests
{
    private static readonly string VaeMlPath = typeof(VaeTransformer).Assembly.Location;

    private sealed record Use(MemberReference Reference, IMemberDefinition? Resolved, string User)
    {
        public string Assembly => ((AssemblyNameReference)Scope(Reference)).Name;

        public bool IsPublic => Resolved is not null && IsAccessible(Resolved);
    }

    [Fact]
    public void Every_ML_NET_member_Vae_ML_uses_exists_in_the_running_ML_NET()
    {
        var uses = CollectMlNetUses();

        uses.Should().NotBeEmpty();
        var missing = uses.Where(u => u.Resolved is null).Select(u => $"{u.Reference.FullName} (used by {u.User})").Distinct().ToList();
        missing.Should().BeEmpty(
            $"Vae.ML was built against Microsoft.ML {MlNetInternals.SupportedMlNetVersions} and this process runs Microsoft.ML.Core {MlNetVersion()}; " +
            "update src/Vae.ML/Internals/MlNetInternals.cs and the supported range");
    }

    [Fact]
    public void Non_public_ML_NET_members_are_used_only_in_MlNetInternals_and_from_assemblies_that_allow_it()
    {
        var nonPublic = CollectMlNetUses().Where(u => u.Resolved is not null && !u.IsPublic).ToList();

        // The scanner must see what persistence is built on, or this test could pass by seeing nothing.
        var names = nonPublic.Select(u => u.Resolved!.FullName).ToHashSet();
        names.Should().Contain(n => n.Contains("ModelSaveContext::SetVersionInfo"));
        names.Should().Contain(n => n.Contains("ModelSaveContext::SaveBinaryStream"));
        names.Should().Contain(n => n.Contains("ModelLoadContext::TryLoadBinaryStream"));
        names.Should().Contain(n => n.Contains("LoadableClassAttribute::.ctor"));
        names.Should().Contain("Microsoft.ML.SignatureLoadModel");

        nonPublic.Where(u => u.User != typeof(MlNetInternals).FullName && u.User != "[assembly: LoadableClass]")
            .Select(u => $"{u.Resolved!.FullName} used by {u.User}").Distinct()
            .Should().BeEmpty("ML.NET internals belong in src/Vae.ML/Internals/MlNetInternals.cs only");

        var allowed = typeof(VaeTransformer).Assembly.GetCustomAttributes()
            .Where(a => a.GetType().Name == "IgnoresAccessChecksToAttribute")
            .Select(a => (string)a.GetType().GetProperty("AssemblyName")!.GetValue(a)!).ToList();
        allowed.Should().BeEquivalentTo("Microsoft.ML.Core", "Microsoft.ML.Data");
        nonPublic.Select(u => u.Assembly).Distinct().Should().BeSubsetOf(allowed, "the runtime only lets Vae.ML past access checks of those");
    }

    [Fact]
    public void Running_ML_NET_is_within_the_supported_range()
    {
        var version = MlNetVersion();
        version.Should().BeGreaterThanOrEqualTo(new Version(5, 0, 1)).And.BeLessThan(new Version(6, 0), MlNetInternals.SupportedMlNetVersions);
        MlNetInternals.SupportedMlNetVersions.Should().Be("[5.0.1, 6.0)");
    }

    [Fact]
    public void Public_API_exposes_no_internal_ML_NET_type_and_no_TorchSharp_type()
    {
        var offenders = new List<string>();
        foreach (var type in typeof(VaeTransformer).Assembly.GetExportedTypes())
        {
            var exposed = new List<(string Where, Type Type)>();
            if (type.BaseType is { } baseType)
            {
                exposed.Add(("base type", baseType));
            }

            exposed.AddRange(type.GetInterfaces().Select(i => ("interface", i)));
            const BindingFlags Visible = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
            foreach (var member in type.GetMembers(Visible))
            {
                switch (member)
                {
                    case MethodBase method when method.IsPublic || method.IsFamily || method.IsFamilyOrAssembly:
                        exposed.AddRange(method.GetParameters().Select(p => (method.Name, p.ParameterType)));
                        if (method is MethodInfo info)
                        {
                            exposed.Add((method.Name, info.ReturnType));
                        }

                        break;
                    case PropertyInfo property when property.GetMethod is { IsPublic: true } || property.SetMethod is { IsPublic: true }:
                        exposed.Add((property.Name, property.PropertyType));
                        break;
                    case FieldInfo field when field.IsPublic || field.IsFamily:
                        exposed.Add((field.Name, field.FieldType));
                        break;
                }
            }

            foreach (var (where, exposedType) in exposed)
            {
                foreach (var part in Flatten(exposedType))
                {
                    var assembly = part.Assembly.GetName().Name ?? "";
                    if ((assembly.StartsWith("Microsoft.ML", StringComparison.Ordinal) && !part.IsVisible) || assembly.StartsWith("TorchSharp", StringComparison.Ordinal))
                    {
                        offenders.Add($"{type.FullName}.{where}: {part.FullName}");
                    }
                }
            }
        }

        offenders.Should().BeEmpty();
    }

    private static IEnumerable<Type> Flatten(Type type)
    {
        yield return type;
        if (type.HasElementType)
        {
            foreach (var t in Flatten(type.GetElementType()!))
            {
                yield return t;
            }
        }

        if (type.IsGenericType)
        {
            foreach (var t in type.GetGenericArguments().SelectMany(Flatten))
            {
                yield return t;
            }
        }
    }

    private static Version MlNetVersion()
    {
        var informational = typeof(MLContext).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion;
        return Version.Parse(informational.Split('+', '-')[0]);
    }

    /// <summary>Every reference from Vae.ML's IL, signatures and assembly attributes into a Microsoft.ML assembly.</summary>
    private static List<Use> CollectMlNetUses()
    {
        var resolver = new DefaultAssemblyResolver();
        // Resolve against the ML.NET DLLs this process runs with, not the publicized copies Vae.ML was compiled against.
        resolver.AddSearchDirectory(Path.GetDirectoryName(typeof(MLContext).Assembly.Location)!);
        resolver.AddSearchDirectory(Path.GetDirectoryName(typeof(object).Assembly.Location)!);
        using var module = ModuleDefinition.ReadModule(VaeMlPath, new ReaderParameters { AssemblyResolver = resolver });
        var found = new List<(MemberReference Reference, string User)>();

        void Add(MemberReference? reference, string user)
        {
            switch (reference)
            {
                case null:
                    return;
                case GenericInstanceMethod generic:
                    Add(generic.ElementMethod, user);
                    foreach (var argument in generic.GenericArguments)
                    {
                        Add(argument, user);
                    }

                    return;
                case TypeSpecification specification:
                    Add(specification.ElementType, user);
                    if (specification is GenericInstanceType genericType)
                    {
                        foreach (var argument in genericType.GenericArguments)
                        {
                            Add(argument, user);
                        }
                    }

                    return;
                case GenericParameter:
                    return;
            }

            if (reference is MethodReference or FieldReference)
            {
                Add(reference.DeclaringType, user);
                if (reference is MethodReference method)
                {
                    Add(method.ReturnType, user);
                    foreach (var parameter in method.Parameters)
                    {
                        Add(parameter.ParameterType, user);
                    }
                }
                else
                {
                    Add(((FieldReference)reference).FieldType, user);
                }
            }

            if (Scope(reference) is AssemblyNameReference name && name.Name.StartsWith("Microsoft.ML", StringComparison.Ordinal))
            {
                found.Add((reference, user));
            }
        }

        foreach (var attribute in module.Assembly.CustomAttributes)
        {
            var user = attribute.AttributeType.Name == "LoadableClassAttribute" ? "[assembly: LoadableClass]" : $"[assembly: {attribute.AttributeType.Name}]";
            Add(attribute.Constructor, user);
            foreach (var argument in attribute.ConstructorArguments)
            {
                Add(argument.Value as TypeReference, user);
            }
        }

        foreach (var type in module.GetTypes())
        {
            var user = Outermost(type).FullName;
            Add(type.BaseType, user);
            foreach (var implemented in type.Interfaces)
            {
                Add(implemented.InterfaceType, user);
            }

            foreach (var field in type.Fields)
            {
                Add(field.FieldType, user);
            }

            foreach (var method in type.Methods)
            {
                Add(method.ReturnType, user);
                foreach (var parameter in method.Parameters)
                {
                    Add(parameter.ParameterType, user);
                }

                foreach (var overridden in method.Overrides)
                {
                    Add(overridden, user);
                }

                if (!method.HasBody)
                {
                    continue;
                }

                foreach (var variable in method.Body.Variables)
                {
                    Add(variable.VariableType, user);
                }

                foreach (var instruction in method.Body.Instructions)
                {
                    Add(instruction.Operand as MemberReference, user);
                }
            }
        }

        return found.DistinctBy(f => (f.Reference.FullName, f.User))
            .Select(f => new Use(f.Reference, Resolve(f.Reference), f.User)).ToList();
    }

    private static IMemberDefinition? Resolve(MemberReference reference)
    {
        try
        {
            return reference switch
            {
                TypeReference type => type.Resolve(),
                MethodReference method => method.Resolve(),
                FieldReference field => field.Resolve(),
                _ => null,
            };
        }
        catch (AssemblyResolutionException)
        {
            return null;
        }
    }

    private static IMetadataScope Scope(MemberReference reference)
    {
        var type = reference as TypeReference ?? reference.DeclaringType;
        while (type.DeclaringType is not null)
        {
            type = type.DeclaringType;
        }

        return type.Scope;
    }

    private static TypeDefinition Outermost(TypeDefinition type)
    {
        while (type.DeclaringType is not null)
        {
            type = type.DeclaringType;
        }

        return type;
    }

    private static bool IsAccessible(IMemberDefinition member)
    {
        static bool TypeVisible(TypeDefinition type)
            => type.IsPublic || (type.IsNestedPublic && TypeVisible(type.DeclaringType))
               || ((type.IsNestedFamily || type.IsNestedFamilyOrAssembly) && TypeVisible(type.DeclaringType));

        return member switch
        {
            TypeDefinition type => TypeVisible(type),
            MethodDefinition method => (method.IsPublic || method.IsFamily || method.IsFamilyOrAssembly) && TypeVisible(method.DeclaringType),
            FieldDefinition field => (field.IsPublic || field.IsFamily || field.IsFamilyOrAssembly) && TypeVisible(field.DeclaringType),
            _ => false,
        };
    }
}
