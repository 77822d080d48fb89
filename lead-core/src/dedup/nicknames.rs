//! First-name equivalences: nicknames, diminutives and the same name in
//! English and Spanish (`bob` = `robert` = `roberto`, `pepe` = `jose`).
//!
//! # Design
//!
//! The table is a list of *groups*; every name in a group is interchangeable
//! with every other. A name may sit in several groups (`alex` is short for
//! `alexander` and `alejandra`, `chris` for `christopher` and `christina`):
//! two names are equivalent when they share at least one group. Matching
//! needs no transitive closure across groups, which keeps `alex` ≠
//! `alexandra`'s unrelated `sandra` group from joining `alexander`.
//!
//! Names are stored folded (ASCII, lower case, letters only, see
//! [`crate::fold_text`]); compound Spanish names are written without the
//! space (`mariajose`, `juancarlos`) because folding removes it.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

/// FNV-1a: the index is read twice per compared pair with short keys,
/// where SipHash's DoS resistance buys nothing (the keys are our own table).
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

type Index = HashMap<&'static str, Vec<u16>, BuildHasherDefault<Fnv>>;

/// The groups. The first name of each group is its canonical form, used by
/// blocking (so `bob` and `robert` land in the same block).
const GROUPS: &[&[&str]] = &[
    // English, male
    &[
        "robert",
        "bob",
        "bobby",
        "rob",
        "robbie",
        "robby",
        "bert",
        "roberto",
        "beto",
        "robertito",
    ],
    &[
        "william",
        "bill",
        "billy",
        "will",
        "willie",
        "willy",
        "liam",
        "guillermo",
        "memo",
        "guille",
    ],
    &[
        "richard", "rick", "ricky", "rich", "richie", "dick", "ricardo", "rico", "richi",
    ],
    &[
        "james", "jim", "jimmy", "jamie", "jaime", "diego", "santiago", "yago",
    ],
    &[
        "john", "johnny", "jack", "jon", "juan", "juanito", "johnnie",
    ],
    &["jonathan", "jon", "jonny", "nathan", "jonatan"],
    &[
        "michael",
        "mike",
        "mikey",
        "mick",
        "mickey",
        "micky",
        "miguel",
        "migue",
        "miguelito",
    ],
    &["thomas", "tom", "tommy", "thom", "tomas", "tomi"],
    &[
        "charles", "charlie", "chuck", "chas", "carlos", "carlitos", "charly", "chucho",
    ],
    &["joseph", "joe", "joey", "jose", "pepe", "pepito", "chema"],
    &["daniel", "dan", "danny", "dani", "danilo"],
    &["david", "dave", "davey", "davy", "davide"],
    &["matthew", "matt", "matty", "mateo", "mat", "matias"],
    &[
        "christopher",
        "chris",
        "kit",
        "topher",
        "cristobal",
        "cris",
        "toval",
    ],
    &[
        "anthony", "tony", "ant", "antonio", "toni", "tono", "nono", "antoine",
    ],
    &["andrew", "andy", "drew", "andres", "andre", "andresito"],
    &[
        "edward", "ed", "eddie", "eddy", "ted", "teddy", "ned", "eduardo", "edu", "lalo",
    ],
    &["edmund", "ed", "eddie", "ned", "edmundo"],
    &["edwin", "ed", "eddie"],
    &["steven", "steve", "stevie", "stephen", "esteban", "stefan"],
    &["benjamin", "ben", "benny", "benji", "benja", "benjamim"],
    &["samuel", "sam", "sammy", "samu", "samuelito"],
    &[
        "alexander",
        "alex",
        "al",
        "alec",
        "xander",
        "sasha",
        "alejandro",
        "ale",
        "jandro",
        "alejo",
        "sandro",
    ],
    &["nicholas", "nick", "nicky", "nico", "nicolas", "colin"],
    &["patrick", "pat", "paddy", "patricio", "pato"],
    &["peter", "pete", "pedro", "perico", "pedrito"],
    &["timothy", "tim", "timmy", "timoteo"],
    &["kenneth", "ken", "kenny"],
    &["gregory", "greg", "gregorio", "goyo"],
    &["raymond", "ray", "ramon", "moncho"],
    &["lawrence", "larry", "laurence", "lorenzo", "enzo"],
    &["gerald", "gerry", "jerry", "gerardo"],
    &["jeffrey", "jeff", "geoffrey", "geoff"],
    &[
        "frederick",
        "fred",
        "freddy",
        "freddie",
        "fritz",
        "federico",
        "fede",
    ],
    &[
        "henry", "hank", "harry", "hal", "enrique", "kike", "quique", "enri",
    ],
    &["harold", "harry", "hal"],
    &[
        "francis",
        "frank",
        "frankie",
        "fran",
        "francisco",
        "paco",
        "pancho",
        "curro",
        "quico",
        "frasco",
        "cisco",
    ],
    &["franklin", "frank", "frankie"],
    &["leonard", "leo", "len", "lenny", "leonardo"],
    &["ronald", "ron", "ronnie", "ronny"],
    &["donald", "don", "donnie", "donny"],
    &["douglas", "doug", "dougie"],
    &["albert", "al", "bert", "bertie", "alberto", "beto", "tito"],
    &["alfred", "al", "alfie", "fred", "alfredo", "fredo"],
    &["arthur", "art", "artie", "arturo"],
    &["walter", "walt", "wally", "gualterio"],
    &["eugene", "gene", "eugenio", "geno"],
    &["vincent", "vince", "vinny", "vicente", "chente"],
    &["zachary", "zach", "zack", "zak"],
    &["joshua", "josh"],
    &["nathaniel", "nate", "nathan", "nat"],
    &["phillip", "phil", "philip", "felipe", "pipe", "feli"],
    &["theodore", "ted", "teddy", "theo", "teodoro", "teo"],
    &["gabriel", "gabe", "gabi", "gaby"],
    &["raphael", "rafael", "rafa", "rafi"],
    &["maximilian", "max", "maxi", "maximiliano", "maximo"],
    &["sebastian", "seb", "sebas", "sebastien", "bastian"],
    &["dominic", "dom", "domingo", "mingo"],
    &["isaac", "ike", "isaque"],
    &["jacob", "jake", "jacobo", "coby"],
    &["ignatius", "iggy", "ignacio", "nacho", "nachete", "inaki"],
    &["jesus", "chucho", "chuy", "suso", "chus", "jesusito"],
    &[
        "manuel", "manolo", "manu", "lolo", "manny", "manolito", "emmanuel", "emanuel",
    ],
    &["luis", "lucho", "luisito", "lu", "louis", "lou", "luigi"],
    &["fernando", "nando", "fer", "ferdinand", "ferran"],
    &["gonzalo", "gonza", "chalo"],
    &["guadalupe", "lupe", "lupita", "pita"],
    &["rodrigo", "rodri", "roy"],
    &["salvador", "salva", "chava", "salvi"],
    &["ricardo", "richi"],
    &["adolfo", "fito", "adolph"],
    &["agustin", "agus", "tin", "augustine", "gus", "augustus"],
    &["alfonso", "poncho", "alfon", "fonsi", "alphonse"],
    &["armando", "mando"],
    &["bartolome", "bartolo", "bart", "bartholomew"],
    &["buenaventura", "ventura", "tura"],
    &["cayetano", "tano"],
    &["concepcion", "concha", "conchita", "chon", "conce"],
    &["ezequiel", "ezekiel", "zeke", "eze"],
    &["gustavo", "gus", "tavo"],
    &["heriberto", "beto"],
    &["humberto", "beto"],
    &["isidoro", "isidro", "chilo"],
    &["jeronimo", "jerome", "jero"],
    &["joaquin", "quino", "joaco", "chimo", "ximo"],
    &["jorge", "george", "georgie", "coque", "jorgito"],
    &["julian", "julio", "jules", "julius"],
    &["leopoldo", "polo", "leo", "leopold"],
    &["lorenzo", "renzo", "loren"],
    &["marcos", "marco", "mark", "marc", "marcus"],
    &["martin", "marty", "tin", "tincho"],
    &["mauricio", "mauri", "maurice", "moe"],
    &["nicanor", "nica"],
    &["octavio", "tavo", "octavian"],
    &["pablo", "paul", "pau", "paulie", "paulino"],
    &["ramiro", "rami"],
    &["reinaldo", "rey", "reynaldo", "reginald", "reggie", "reg"],
    &["santiago", "santi", "chago"],
    &["sergio", "checo", "sergi", "serge", "serch"],
    &["teodoro", "lolo"],
    &["tobias", "toby", "tobi"],
    &["valentin", "vale", "valentine", "tino"],
    &["victor", "vic", "vicky", "vitor"],
    &["xavier", "javier", "javi", "xavi", "xavo", "javo"],
    &["alvaro", "alvarito"],
    &["emilio", "emil", "emile", "milo"],
    &["hector", "tito"],
    &["ivan", "vanya", "ivancito"],
    &["oscar", "osqui"],
    &["raul", "rauli"],
    &["ruben", "reuben", "rubi"],
    &["silvestre", "silvester", "sly", "chete"],
    &["ulises", "ulysses"],
    &["abraham", "abe", "abram", "abrahan"],
    &["adrian", "adri", "adriano"],
    &["cristian", "christian", "chris", "cris"],
    &["stanley", "stan"],
    &["stuart", "stu", "stewart"],
    &["terrence", "terry", "terence"],
    &["calvin", "cal"],
    &["clifford", "cliff"],
    &["curtis", "curt", "kurt"],
    &["jerome", "jerry"],
    &["marvin", "marv"],
    &["mitchell", "mitch"],
    &["randall", "randy", "randolph"],
    &["russell", "russ", "rusty"],
    &["sylvester", "sly"],
    &["wesley", "wes"],
    &["jackson", "jack", "jax"],
    &["frederic", "fred", "freddy"],
    &["kristopher", "kris", "chris", "christopher"],
    &["ezra", "ez"],
    // English, female
    &[
        "elizabeth",
        "liz",
        "lizzy",
        "lizzie",
        "beth",
        "betty",
        "bette",
        "betsy",
        "eliza",
        "elisa",
        "libby",
        "lisa",
        "isabel",
        "isabella",
        "bella",
        "isa",
        "chabela",
        "eli",
        "elisabet",
    ],
    &[
        "margaret",
        "maggie",
        "meg",
        "peggy",
        "marge",
        "margie",
        "greta",
        "daisy",
        "margarita",
        "marga",
        "rita",
        "maggy",
    ],
    &[
        "katherine",
        "kate",
        "katie",
        "kathy",
        "kat",
        "kitty",
        "catherine",
        "cathy",
        "kathryn",
        "catalina",
        "cata",
        "katy",
        "caty",
        "kay",
    ],
    &["jennifer", "jen", "jenny", "jenn"],
    &["jessica", "jess", "jessie"],
    &[
        "patricia", "pat", "patty", "patsy", "tricia", "trish", "patri",
    ],
    &["susan", "sue", "suzy", "susie", "susana", "susi", "suzanne"],
    &["deborah", "debbie", "deb", "debra", "debora"],
    &["rebecca", "becky", "becca", "beca", "rebeca"],
    &["victoria", "vicky", "vicki", "tori", "vicki", "viqui"],
    &[
        "christina",
        "chris",
        "tina",
        "chrissy",
        "cristina",
        "cris",
        "kristina",
        "kristin",
        "kirsten",
    ],
    &["christine", "chris", "tina", "chrissy"],
    &[
        "alexandra",
        "alex",
        "alexa",
        "lexi",
        "sandra",
        "sandy",
        "alejandra",
        "ale",
        "sasha",
        "jandra",
    ],
    &["samantha", "sam", "sammy", "sami"],
    &["abigail", "abby", "abbie", "gail"],
    &["barbara", "barb", "babs", "barbie", "barbi"],
    &["dorothy", "dot", "dottie", "dolly", "dora", "dorotea"],
    &[
        "eleanor", "ellie", "nell", "nora", "leonor", "elly", "lenore",
    ],
    &[
        "helen", "ellen", "nell", "lena", "elena", "helena", "nelly", "nena",
    ],
    &["kimberly", "kim", "kimmy"],
    &["pamela", "pam", "pammy"],
    &[
        "stephanie",
        "steph",
        "stefanie",
        "estefania",
        "fany",
        "tefi",
    ],
    &[
        "teresa", "theresa", "terry", "tess", "tessa", "tere", "teri",
    ],
    &["angela", "angie", "angelita", "geli"],
    &["cynthia", "cindy"],
    &["florence", "flo", "florencia", "flor"],
    &[
        "frances",
        "fran",
        "frannie",
        "francisca",
        "paca",
        "paquita",
        "panchita",
        "cisca",
    ],
    &[
        "gabrielle",
        "gabby",
        "gabi",
        "gabriela",
        "gaby",
        "gabriella",
    ],
    &[
        "josephine",
        "jo",
        "josie",
        "josefina",
        "pepa",
        "pepita",
        "fina",
        "josefa",
        "chepa",
    ],
    &["judith", "judy", "jude", "judit"],
    &["lillian", "lily", "lil", "liliana", "lili"],
    &[
        "madeline",
        "maddie",
        "maddy",
        "madelyn",
        "magdalena",
        "magda",
        "malena",
        "lena",
    ],
    &["natalie", "nat", "natalia", "nati", "talia"],
    &["olivia", "liv", "livvy", "oli"],
    &["penelope", "penny", "pene"],
    &["valerie", "val", "valeria", "vale"],
    &["veronica", "ronnie", "vero", "roni"],
    &["virginia", "ginny", "ginger", "gina"],
    &["wilhelmina", "mina", "willa", "billie"],
    &["amanda", "mandy", "manda"],
    &["cassandra", "cassie", "sandra", "casandra"],
    &["jacqueline", "jackie", "jacky", "jaqueline"],
    &[
        "caroline", "carol", "carrie", "carolina", "caro", "carolyn", "lina",
    ],
    &["charlotte", "charlie", "lottie", "carlota", "carla"],
    &["allison", "ally", "allie", "alison"],
    &[
        "anne", "ann", "annie", "anna", "ana", "nancy", "anita", "hannah", "hanna",
    ],
    &["andrea", "andie", "andy"],
    &["beatrice", "bea", "trixie", "beatriz", "betty"],
    &["cecilia", "ceci", "cissy", "cecily", "chechi"],
    &["constance", "connie", "constanza", "coni"],
    &["emily", "em", "emmy", "emilia", "emi", "milly"],
    &["emma", "em", "emmy"],
    &["evelyn", "eve", "evie", "evelin", "evelina"],
    &["gertrude", "gertie", "trudy", "gertrudis", "tula"],
    &["harriet", "hattie", "harry"],
    &["irene", "rena", "reni", "ire"],
    &["janet", "jan", "jenny", "janette"],
    &["jane", "janie", "jenny", "juana", "juanita", "jana"],
    &["joan", "joanie", "joanna", "johanna"],
    &["julia", "julie", "jules", "juli", "julieta", "juliet"],
    &["laura", "laurie", "lauri", "lau", "lara"],
    &["lucy", "lucia", "lu", "luci", "lucille"],
    &["martha", "marty", "mattie", "marta", "martita"],
    &[
        "mary",
        "maria",
        "molly",
        "polly",
        "mae",
        "mari",
        "mariah",
        "marie",
        "mimi",
        "mariquita",
        "maruja",
        "marita",
        "mia",
    ],
    &["mariajose", "majo", "mariajo", "marijose", "josefa"],
    &[
        "mariacarmen",
        "maricarmen",
        "mamen",
        "carmen",
        "menchu",
        "carmela",
        "carmina",
    ],
    &[
        "mariadolores",
        "mariloli",
        "dolores",
        "lola",
        "loli",
        "lolita",
        "dolo",
    ],
    &["mariaisabel", "maribel", "marisa", "isabel"],
    &["mariateresa", "maite", "marite", "teresa", "tere"],
    &["mariaangeles", "marian", "angeles", "geles", "mariangeles"],
    &["mariaeugenia", "maru", "eugenia", "maruja"],
    &["mariafernanda", "marifer", "fernanda", "fer"],
    &["mariadelpilar", "pilar", "pili", "mapi"],
    &["mariaantonia", "antonia", "toni", "tona", "tonia"],
    &["mariaelena", "malena", "mariele", "elena"],
    &["mariaeulalia", "eulalia", "lali", "laia"],
    &["mariajesus", "chus", "mariaje", "marije"],
    &[
        "mariadelrosario",
        "rosario",
        "charo",
        "chari",
        "rosa",
        "rosi",
    ],
    &["mariadelmar", "mar", "marimar"],
    &["mariadelaluz", "luz", "lucha", "mariluz"],
    &["mariadelosangeles", "angeles", "marian"],
    &["mariadelsocorro", "socorro", "coco"],
    &["mariadelaconcepcion", "concepcion", "concha", "conchita"],
    &["mariadelasmercedes", "mercedes", "merche", "meche", "mecha"],
    &["anamaria", "ana", "anamari", "anita"],
    &["anabel", "anabella", "annabelle", "ana"],
    &["nicole", "nikki", "nicky", "nicol", "nicolasa", "nicoletta"],
    &[
        "rosemary",
        "rose",
        "rosie",
        "rosamaria",
        "rosa",
        "rosi",
        "rosita",
    ],
    &["sarah", "sara", "sally", "sadie", "sarita"],
    &["sofia", "sophia", "sophie", "sofi", "sofy"],
    &["priscilla", "cilla", "prissy", "priscila"],
    &["rachel", "rach", "raquel", "raque", "kela"],
    &["ramona", "mona", "moncha"],
    &["regina", "reggie", "gina"],
    &["roberta", "bobbie", "robbie", "berta", "bertita"],
    &["ruth", "ruthie", "rut"],
    &["shirley", "shirl"],
    &["tabitha", "tabby"],
    &["vanessa", "nessa", "vane", "nessie"],
    &["yolanda", "yoli", "yola"],
    &["zoe", "zoey"],
    &["adelaide", "addie", "adela", "adele", "adelita"],
    &["agnes", "aggie", "ines", "nessa"],
    &["alicia", "ali", "alice", "licha", "ally"],
    &["amelia", "amy", "millie", "mila"],
    &["antonia", "toni", "tonia", "tona"],
    &["araceli", "chelo", "ara"],
    &["asuncion", "asun", "chon"],
    &["beatriz", "bea", "beti"],
    &["consuelo", "chelo", "consue", "connie"],
    &["encarnacion", "encarna", "encarni", "chon"],
    &["esperanza", "espe", "lancha", "hope"],
    &["eugenia", "geni", "gena", "eugenie", "genie"],
    &["gloria", "glori", "glo"],
    &["graciela", "chela", "grace", "gracie", "gracia"],
    &["guillermina", "mina", "guille", "wilma"],
    &["ignacia", "nacha"],
    &["inmaculada", "inma", "macu", "inmaculada"],
    &["josefina", "fina", "chepina"],
    &["leticia", "leti", "lety", "letty", "letitia"],
    &["lourdes", "lulu", "lurdes"],
    &["luisa", "luisita", "louisa", "louise", "lulu", "lu"],
    &["milagros", "mila", "milagritos"],
    &["montserrat", "montse", "monse", "montsita"],
    &["natividad", "nati", "naty"],
    &["nuria", "nuri"],
    &["purificacion", "puri", "pura"],
    &["remedios", "reme", "remedio"],
    &["rocio", "ro", "rochi"],
    &["soledad", "sole", "chole"],
    &["trinidad", "trini", "trinita"],
    &["yesenia", "yese", "jessenia"],
    &["ximena", "jimena", "xime", "jime"],
    &["daniela", "dani", "danny", "dana"],
    &["gabriela", "gabi", "gaby"],
    &["fernanda", "fer", "nanda", "fernandita"],
    &["francesca", "fran", "frankie", "cesca"],
    &["mercedes", "merche", "meche", "mercy", "sadie"],
    &["dolores", "lola", "loli", "lolita", "dolly"],
    &["pilar", "pili", "pilarica"],
    &["carmen", "menchu", "carmencita", "carmela", "mela"],
    &["rosario", "charo", "chayo", "rosi"],
    &["angeles", "geles", "angie"],
    &["guadalupe", "lupe", "lupita"],
    &["catalina", "cata", "caty", "lina"],
    &["carolina", "caro", "carol"],
    &["cristina", "cris", "tina", "crista"],
    &["susana", "susi", "sue"],
    &["silvia", "sylvia", "silvi"],
    &["sandra", "sandy", "sandrita"],
    &["monica", "moni", "monique"],
    &["lorena", "lore", "loren"],
    &["marina", "mari", "marinita"],
    &["paula", "pau", "paulita", "paola", "pauline"],
    &["raquel", "raque", "quela"],
    &["veronica", "vero"],
    &["virginia", "vicky", "virgi"],
    &["yvonne", "ivonne", "yvette"],
];

/// Index from a folded name to the groups it belongs to.
fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut map = Index::default();
        for (group, names) in GROUPS.iter().enumerate() {
            // The table has far fewer than 65 536 groups; the cast cannot truncate.
            let group = group as u16;
            for name in *names {
                let ids = map.entry(*name).or_default();
                if !ids.contains(&group) {
                    ids.push(group);
                }
            }
        }
        map
    })
}

/// The groups a folded first name belongs to (empty for names not in the
/// table).
pub(crate) fn groups_of(folded: &str) -> &'static [u16] {
    index().get(folded).map_or(&[], Vec::as_slice)
}

/// `true` when two folded first names are nicknames, diminutives or
/// translations of one another (`bob`/`robert`, `paco`/`francisco`,
/// `william`/`guillermo`). A name is not its own nickname: equal names are
/// compared as equal names, not through this table.
///
/// # Example
///
/// ```
/// use lead_core::dedup::are_nicknames;
/// assert!(are_nicknames("bob", "robert"));
/// assert!(are_nicknames("pepe", "jose"));
/// assert!(!are_nicknames("bob", "william"));
/// ```
pub fn are_nicknames(a: &str, b: &str) -> bool {
    if a == b {
        return false;
    }
    let (ga, gb) = (groups_of(a), groups_of(b));
    ga.iter().any(|g| gb.contains(g))
}

/// The canonical forms of a folded first name: the head of every group it
/// belongs to, or the name itself when it is in no group.
///
/// Blocking keys use these so a nickname and its full form share a block.
pub fn canonical_first_names(folded: &str) -> impl Iterator<Item = &str> {
    let groups = groups_of(folded);
    let own = groups.is_empty().then_some(folded);
    own.into_iter().chain(groups.iter().filter_map(|g| {
        GROUPS
            .get(usize::from(*g))
            .and_then(|names| names.first().copied())
    }))
}

/// How many distinct (name, name) equivalences the table knows.
#[cfg(test)]
pub(crate) fn pair_count() -> usize {
    let idx = index();
    let mut names: Vec<&str> = idx.keys().copied().collect();
    names.sort_unstable();
    let mut count = 0;
    for (i, a) in names.iter().enumerate() {
        for b in &names[i + 1..] {
            if are_nicknames(a, b) {
                count += 1;
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold_text;

    #[test]
    fn english_and_spanish_diminutives_are_equivalent() {
        for (a, b) in [
            ("bob", "robert"),
            ("bill", "william"),
            ("pepe", "jose"),
            ("paco", "francisco"),
            ("peggy", "margaret"),
            ("nacho", "ignacio"),
            ("lola", "dolores"),
            ("chema", "jose"),
            ("kike", "enrique"),
            ("guillermo", "william"),
            ("majo", "mariajose"),
        ] {
            assert!(are_nicknames(a, b), "{a} ~ {b}");
            assert!(are_nicknames(b, a), "{b} ~ {a}");
        }
    }

    #[test]
    fn unrelated_names_are_not_equivalent() {
        assert!(!are_nicknames("robert", "william"));
        assert!(!are_nicknames("maria", "jose"));
        assert!(!are_nicknames("zzz", "robert"));
        assert!(!are_nicknames("robert", "robert"));
    }

    #[test]
    fn a_name_in_two_groups_matches_both_but_does_not_join_them() {
        assert!(are_nicknames("alex", "alexander"));
        assert!(are_nicknames("alex", "alejandra"));
        assert!(!are_nicknames("alexander", "alejandra"));
    }

    #[test]
    fn table_holds_several_hundred_pairs_of_folded_names() {
        assert!(pair_count() > 500, "only {} pairs", pair_count());
        for names in GROUPS {
            for name in *names {
                assert_eq!(fold_text(name), *name, "`{name}` is not folded");
            }
        }
    }

    #[test]
    fn canonical_names_point_nicknames_at_their_group_head() {
        let bob: Vec<&str> = canonical_first_names("bob").collect();
        assert_eq!(bob, ["robert"]);
        let unknown: Vec<&str> = canonical_first_names("zebulon").collect();
        assert_eq!(unknown, ["zebulon"]);
        let alex: Vec<&str> = canonical_first_names("alex").collect();
        assert!(alex.contains(&"alexander") && alex.contains(&"alexandra"));
    }
}
