// phenokg saved queries for Neo4j Browser.
// Run the :param lines first (edit the ids), then any query below. To keep them as favourites, drag this
// file onto the Favorites drawer (star icon), or `:play http://localhost:8000/explore/neo4j/guide.html`.
// Colours and captions: `:style http://localhost:8000/explore/neo4j/style.grass`.
:param term => 'HP:0002090';
:param disease => 'OMIM:100001';
:param phenotypes => ['HP:0002090', 'HP:0001640', 'HP:0002202'];
:param gene => 'LUNGA';

// name: Term neighbourhood
// The term with its parents and children (IS_A) and the diseases whose typical (HAS_PHENOTYPE) or
// excluded (EXCLUDES) set names it.
MATCH (t:Phenotype {id: $term})
OPTIONAL MATCH (t)-[up:IS_A]->(parent:Phenotype)
WITH t, collect(up) AS ups, collect(parent) AS parents
OPTIONAL MATCH (child:Phenotype)-[down:IS_A]->(t)
WITH t, ups, parents, collect(down)[..25] AS downs, collect(child)[..25] AS children
OPTIONAL MATCH (d:Disease)-[a]->(t)
WHERE type(a) IN ['HAS_PHENOTYPE', 'EXCLUDES']
RETURN t, parents, ups, children, downs, collect(d)[..50] AS diseases, collect(a)[..50] AS annotations;

// name: Disease: typical vs excluded phenotypes
// Every phenotype of the disease, typical set (HAS_PHENOTYPE, most frequent first) then excluded set.
MATCH (d:Disease {id: $disease})-[a]->(p:Phenotype)
WHERE type(a) IN ['HAS_PHENOTYPE', 'EXCLUDES']
RETURN d, a, p, type(a) AS relation, p.id AS phenotype_id, p.name AS phenotype, a.frequency AS frequency
ORDER BY relation DESC, frequency DESC, phenotype_id;

// name: Evidence for a phenotype
// Images whose captions show the term (SHOWS) or rule it out (RULES_OUT), with the matched words.
MATCH (e:Evidence)-[s]->(p:Phenotype {id: $term})
WHERE type(s) IN ['SHOWS', 'RULES_OUT']
RETURN e, s, p, type(s) AS relation, e.caption AS caption, s.matched AS matched, e.image_uri AS image
ORDER BY relation, caption
LIMIT 50;

// name: Diseases sharing phenotypes with a disease
// Other diseases annotated with the same phenotypes as $disease: `agree` counts phenotypes both sets
// put in the same relation (both typical or both excluded), `conflict` those one calls typical and the
// other excludes.
MATCH (d:Disease {id: $disease})-[a]->(p:Phenotype)<-[b]-(other:Disease)
WHERE other.id <> d.id AND type(a) IN ['HAS_PHENOTYPE', 'EXCLUDES'] AND type(b) IN ['HAS_PHENOTYPE', 'EXCLUDES']
WITH other, collect(p.name) AS phenotypes, sum(CASE WHEN type(a) = type(b) THEN 1 ELSE 0 END) AS agree,
     sum(CASE WHEN type(a) <> type(b) THEN 1 ELSE 0 END) AS conflict
RETURN other.id AS disease, other.name AS name, other.source AS source, size(phenotypes) AS shared, agree,
       conflict, phenotypes
ORDER BY agree DESC, shared DESC, disease
LIMIT 25;

// name: Diseases showing a phenotype set
// Diseases whose typical set holds the most of $phenotypes, and which of them they exclude.
UNWIND $phenotypes AS pid
MATCH (d:Disease)-[a]->(p:Phenotype {id: pid})
WHERE type(a) IN ['HAS_PHENOTYPE', 'EXCLUDES']
WITH d, collect(CASE WHEN type(a) = 'HAS_PHENOTYPE' THEN p.id END) AS shows,
     collect(CASE WHEN type(a) = 'EXCLUDES' THEN p.id END) AS excludes
RETURN d.id AS disease, d.name AS name, size(shows) AS matched, shows, excludes
ORDER BY matched DESC, disease
LIMIT 25;

// name: Diseases of a gene
// Diseases associated with the gene symbol $gene (the release's genes_to_phenotype.txt), with the size of
// their typical and excluded sets (phenotypic abnormalities, aspect P); an OMIM entry and its Orphanet twin
// often both appear.
MATCH (d:Disease)
WHERE $gene IN d.genes
OPTIONAL MATCH (d)-[a]->(:Phenotype)
WHERE type(a) IN ['HAS_PHENOTYPE', 'EXCLUDES'] AND a.aspect = 'P'
RETURN d.id AS disease, d.name AS name, d.source AS source, d.genes AS genes,
       sum(CASE WHEN type(a) = 'HAS_PHENOTYPE' THEN 1 ELSE 0 END) AS typical,
       sum(CASE WHEN type(a) = 'EXCLUDES' THEN 1 ELSE 0 END) AS excluded
ORDER BY disease;
