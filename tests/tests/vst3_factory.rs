//! The VST3 bundle's factory, through the module's own entry points (no SDK):
//! one instrument class, with the frozen class id and name.

use std::ffi::{c_char, c_void};

use auralis_tests::clap_host::private_copy;

/// `VST3_CLASS_ID`, frozen.
const CLASS_ID: [u8; 16] = *b"AuralisAmbientI1";

/// `Steinberg::PFactoryInfo`.
#[repr(C)]
struct FactoryInfo {
    vendor: [c_char; 64],
    url: [c_char; 256],
    email: [c_char; 128],
    flags: i32,
}

/// `Steinberg::PClassInfo`.
#[repr(C)]
struct ClassInfo {
    cid: [u8; 16],
    cardinality: i32,
    category: [c_char; 32],
    name: [c_char; 64],
}

/// The start of `Steinberg::IPluginFactory`'s vtable (FUnknown first).
#[repr(C)]
struct FactoryVtbl {
    query_interface: unsafe extern "C" fn(*mut c_void, *const u8, *mut *mut c_void) -> i32,
    add_ref: unsafe extern "C" fn(*mut c_void) -> u32,
    release: unsafe extern "C" fn(*mut c_void) -> u32,
    get_factory_info: unsafe extern "C" fn(*mut c_void, *mut FactoryInfo) -> i32,
    count_classes: unsafe extern "C" fn(*mut c_void) -> i32,
    get_class_info: unsafe extern "C" fn(*mut c_void, i32, *mut ClassInfo) -> i32,
}

fn text(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn the_factory_describes_one_instrument_with_the_frozen_class_id() {
    let path = private_copy("Auralis.vst3/Contents/x86_64-linux/Auralis.so");
    // SAFETY: our own plugin library, built for this test; its initialisers are
    // nice-plug's.
    let lib = unsafe { libloading::Library::new(&path) }.expect("load the VST3 module");
    std::fs::remove_file(&path).expect("remove the private copy");
    // SAFETY: the signatures are those of the VST3 module interface on Linux:
    // `bool ModuleEntry(void*)`, `IPluginFactory* GetPluginFactory()`,
    // `bool ModuleExit()`.
    unsafe {
        let entry: libloading::Symbol<'_, unsafe extern "C" fn(*mut c_void) -> bool> =
            lib.get(b"ModuleEntry").expect("ModuleEntry");
        let exit: libloading::Symbol<'_, unsafe extern "C" fn() -> bool> =
            lib.get(b"ModuleExit").expect("ModuleExit");
        let get_factory: libloading::Symbol<'_, unsafe extern "C" fn() -> *mut c_void> =
            lib.get(b"GetPluginFactory").expect("GetPluginFactory");
        assert!(entry(std::ptr::null_mut()), "ModuleEntry failed");
        let factory = get_factory();
        assert!(!factory.is_null(), "no factory");
        let vtbl = &**(factory as *const *const FactoryVtbl);

        let mut info: FactoryInfo = std::mem::zeroed();
        assert_eq!((vtbl.get_factory_info)(factory, &mut info), 0);
        assert_eq!(text(&info.vendor), "Auralis");

        assert_eq!((vtbl.count_classes)(factory), 1, "one class");
        let mut class: ClassInfo = std::mem::zeroed();
        assert_eq!((vtbl.get_class_info)(factory, 0, &mut class), 0);
        assert_eq!(class.cid, CLASS_ID, "the frozen class id");
        assert_eq!(text(&class.category), "Audio Module Class");
        assert_eq!(text(&class.name), "Auralis");
        assert_ne!(
            (vtbl.get_class_info)(factory, 1, &mut class),
            0,
            "a second class"
        );

        (vtbl.release)(factory);
        assert!(exit(), "ModuleExit failed");
    }
}
